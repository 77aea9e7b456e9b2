using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using Iris.Hosting;
using Iris.Overlay.Security;
using Iris.Tests.Support;

namespace Iris.Tests.Silo;

/// <summary>
/// The node's OpenTelemetry export, switched on by configuration: a real Iris.Silo process sends its traces and
/// metrics over OTLP (HTTP) to a receiver this test runs on loopback; bad settings stop it with the setting's name.
/// </summary>
public class TelemetryTests
{
    /// <summary>An OTLP/HTTP receiver: takes every POST and keeps its path and body.</summary>
    private sealed class OtlpReceiver : IDisposable
    {
        private readonly HttpListener _listener = new();

        public OtlpReceiver()
        {
            Port = PortPicker.AnyFree();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            _listener.Start();
            _ = Task.Run(ReceiveAsync);
        }

        public int Port { get; }

        public ConcurrentQueue<(string Path, string ContentType, byte[] Body)> Received { get; } = new();

        public bool Has(string path, string text) =>
            Received.Any(r => r.Path == path && r.ContentType == "application/x-protobuf" && Encoding.UTF8.GetString(r.Body).Contains(text, StringComparison.Ordinal));

        private async Task ReceiveAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                Received.Enqueue((context.Request.Url!.AbsolutePath, context.Request.ContentType ?? string.Empty, body.ToArray()));
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/x-protobuf";
                context.Response.Close();
            }
        }

        public void Dispose() => _listener.Close();
    }

    [Fact]
    public async Task With_an_OTLP_endpoint_set_the_node_exports_its_traces_and_Iris_metrics_there()
    {
        using var receiver = new OtlpReceiver();
        var network = new IrisNetwork(51000);
        await using var silo = ChildProcess.Start("dotnet", [RepositoryPaths.Program("src", "Iris.Silo")], network.SiloSettings(
            ("Logging__Console__DisableColors", "true"),
            ("Iris__Silo__SiloPort", PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture)),
            ("Iris__Silo__GatewayPort", PortPicker.AnyFree().ToString(CultureInfo.InvariantCulture)),
            ("Iris__Relay__Enabled", "false"),
            ("Iris__Http__Enabled", "false"),
            ("Iris__Silo__EchoCluster", "telemetry-echo"),
            ("Iris__Telemetry__OtlpEndpoint", $"http://127.0.0.1:{receiver.Port}"),
            ("Iris__Telemetry__Protocol", "http/protobuf"),
            ("Iris__Telemetry__ServiceName", "iris-under-test"),

            // Standard OpenTelemetry settings: export every second rather than every minute.
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
            ("OTEL_BSP_SCHEDULE_DELAY", "500")));

        await silo.WaitForAsync(lines => lines.Any(l => l.Contains($"telemetry       OTLP http://127.0.0.1:{receiver.Port}/ (http/protobuf)", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), "the start-up block naming the OTLP endpoint");

        // Orleans' grain call spans (the silo's own membership and directory calls) and the Iris meter's member count
        // (the echo member), each under the service name set.
        await Eventually.HoldsAsync(
            () => receiver.Has("/v1/traces", "Microsoft.Orleans") && receiver.Has("/v1/traces", "iris-under-test"),
            () => $"no trace export with Orleans' spans; received: {string.Join(", ", receiver.Received.Select(r => $"{r.Path} {r.ContentType} {r.Body.Length} B"))}",
            TimeSpan.FromSeconds(30));
        await Eventually.HoldsAsync(
            () => receiver.Has("/v1/metrics", "iris.members") && receiver.Has("/v1/metrics", "telemetry-echo"),
            () => $"no metrics export with iris.members; received: {string.Join(", ", receiver.Received.Select(r => $"{r.Path} {r.ContentType} {r.Body.Length} B"))}",
            TimeSpan.FromSeconds(30));
    }

    [Theory]
    [InlineData("Iris__Telemetry__Protocol", "udp", "Iris:Telemetry:Protocol (or OTEL_EXPORTER_OTLP_PROTOCOL) must be grpc or http/protobuf; it is 'udp'.")]
    [InlineData("Iris__Telemetry__OtlpEndpoint", "collector:4317", "Iris:Telemetry:OtlpEndpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) must be an http or https URL")]
    [InlineData("Iris__Telemetry__SamplingRatio", "2", "Iris:Telemetry:SamplingRatio must be between 0 and 1; it is 2.")]
    public async Task A_bad_telemetry_setting_stops_the_node_naming_the_setting(string variable, string value, string message)
    {
        await using var silo = ChildProcess.Start("dotnet", [RepositoryPaths.Program("src", "Iris.Silo")], new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Iris__Network__Key"] = Convert.ToBase64String(NetworkKey.Generate().Bytes),
            ["Iris__Network__Discovery__Scope"] = "None",
            [variable] = value,
        });
        await silo.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, silo.ExitCode);
        Assert.Contains(silo.Lines, l => l.Contains("Iris silo cannot start: " + message, StringComparison.Ordinal));
    }
}
