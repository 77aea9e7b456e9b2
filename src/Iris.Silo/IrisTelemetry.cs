using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Iris.Silo;

/// <summary>
/// Export of the node's traces and metrics over OTLP, bound from <c>Iris:Telemetry</c>. Off unless an endpoint is set
/// here or in the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> variable (which .NET Aspire sets for its projects).
/// </summary>
public sealed class IrisTelemetryOptions
{
    public const string SectionName = "Iris:Telemetry";

    /// <summary>Where traces and metrics go (an OTLP collector: <c>http://localhost:4317</c> for gRPC,
    /// <c>http://localhost:4318</c> for HTTP). Default: <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, else off.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary><c>grpc</c> or <c>http/protobuf</c>. Default: the standard <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, else
    /// <c>grpc</c>.</summary>
    public string? Protocol { get; set; }

    /// <summary>The share of traces recorded, from 0 to 1, decided where a trace starts and followed by every span in
    /// it (so a trace is whole or absent). Default 1: every trace; lower it on a busy network.</summary>
    public double SamplingRatio { get; set; } = 1;

    /// <summary>The protocol in force: this section's, or the standard variable's, or gRPC.</summary>
    public string ProtocolIn(IConfiguration configuration) =>
        Protocol is { Length: > 0 } set ? set : configuration["OTEL_EXPORTER_OTLP_PROTOCOL"] is { Length: > 0 } standard ? standard : "grpc";

    /// <summary>The service name the node's telemetry carries. Default <c>iris</c>.</summary>
    public string ServiceName { get; set; } = "iris";

    /// <summary>The endpoint in force: this section's, or the standard variable's; null when export is off.</summary>
    public Uri? Endpoint(IConfiguration configuration)
    {
        var text = OtlpEndpoint is { Length: > 0 } set ? set : configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        return text is { Length: > 0 } && Uri.TryCreate(text, UriKind.Absolute, out var uri) ? uri : null;
    }

    /// <summary>The problems with these settings, each naming its setting; empty when there are none.</summary>
    public IReadOnlyList<string> Problems(IConfiguration configuration)
    {
        var problems = new List<string>();
        var text = OtlpEndpoint is { Length: > 0 } set ? set : configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        if (text is { Length: > 0 } && (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
        {
            problems.Add($"{SectionName}:OtlpEndpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) must be an http or https URL, such as http://localhost:4317; it is '{text}'.");
        }

        if (ProtocolIn(configuration) is not ("grpc" or "http/protobuf") and var protocol)
        {
            problems.Add($"{SectionName}:Protocol (or OTEL_EXPORTER_OTLP_PROTOCOL) must be grpc or http/protobuf; it is '{protocol}'.");
        }

        if (SamplingRatio is < 0 or > 1 || double.IsNaN(SamplingRatio))
        {
            problems.Add($"{SectionName}:SamplingRatio must be between 0 and 1; it is {SamplingRatio}.");
        }

        if (string.IsNullOrWhiteSpace(ServiceName))
        {
            problems.Add($"{SectionName}:ServiceName must not be empty.");
        }

        return problems;
    }
}

/// <summary>Wires the node's activity sources and meters to OpenTelemetry's OTLP exporter.</summary>
internal static class IrisTelemetry
{
    /// <summary>Spans: Iris' own (<c>Iris</c>) and Orleans' grain calls, through which Iris' spans are parented across
    /// processes.</summary>
    public static readonly string[] Sources = ["Iris", "Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];

    /// <summary>Metrics: Iris' patterns, the overlay, and Orleans' runtime.</summary>
    public static readonly string[] Meters = ["Iris", "Iris.Overlay", "Microsoft.Orleans"];

    public static IServiceCollection AddIrisTelemetry(this IServiceCollection services, IrisTelemetryOptions options, IConfiguration configuration, Uri endpoint)
    {
        var name = options.ProtocolIn(configuration);
        var protocol = name == "http/protobuf" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
        services.AddSingleton(new IrisTelemetryTarget(endpoint, name, options.ServiceName, options.SamplingRatio));
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(options.ServiceName))
            .WithTracing(tracing => tracing
                .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.SamplingRatio)))
                .AddSource(Sources)
                .AddOtlpExporter(otlp => Configure(otlp, endpoint, protocol, "v1/traces")))
            .WithMetrics(metrics => metrics.AddMeter(Meters).AddOtlpExporter(otlp => Configure(otlp, endpoint, protocol, "v1/metrics")));
        return services;
    }

    // Over HTTP each signal has its own path under the endpoint, as the standard variable means it; gRPC takes the
    // endpoint as it is.
    private static void Configure(OtlpExporterOptions otlp, Uri endpoint, OtlpExportProtocol protocol, string signalPath)
    {
        otlp.Protocol = protocol;
        otlp.Endpoint = protocol == OtlpExportProtocol.HttpProtobuf ? new Uri(endpoint.AbsoluteUri.TrimEnd('/') + "/" + signalPath) : endpoint;
    }
}

/// <summary>Where the node's telemetry goes, for its start-up block.</summary>
internal sealed record IrisTelemetryTarget(Uri Endpoint, string Protocol, string ServiceName, double SamplingRatio)
{
    public override string ToString() =>
        $"OTLP {Endpoint} ({Protocol}) as service '{ServiceName}': traces of {string.Join(", ", IrisTelemetry.Sources)} ({SamplingRatio:P0} sampled); metrics of {string.Join(", ", IrisTelemetry.Meters)}";
}
