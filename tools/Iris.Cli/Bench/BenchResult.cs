using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using HdrHistogram;

namespace Iris.Cli.Bench;

/// <summary>What a benchmark measured. Megabytes are 10^6 bytes of message payload (one way); latencies are
/// milliseconds.</summary>
internal sealed record BenchResult(
    string Pattern,
    string Target,
    int Clients,
    int Size,
    double Seconds,
    long Messages,
    long Errors,
    double MessagesPerSecond,
    double MegabytesPerSecond,
    double MeanMs,
    double P50Ms,
    double P90Ms,
    double P99Ms,
    double P999Ms,
    double MaxMs,
    string Measures,
    string? Error)
{
    private static readonly string[] CsvColumns =
        ["pattern", "target", "clients", "size", "seconds", "messages", "errors", "messagesPerSecond", "megabytesPerSecond", "meanMs", "p50Ms", "p90Ms", "p99Ms", "p999Ms", "maxMs"];

    /// <summary>The result of <paramref name="messages"/> round trips of <paramref name="settings"/>' size in
    /// <paramref name="seconds"/>, their latencies (microseconds) in <paramref name="latencies"/>.</summary>
    public static BenchResult From(BenchSettings settings, double seconds, long messages, long errors, HistogramBase latencies, string measures, string? error)
    {
        static double Ms(double microseconds) => Math.Round(microseconds / 1000.0, 3);
        var any = latencies.TotalCount > 0;
        return new BenchResult(
            settings.Pattern.ToString().ToLowerInvariant(),
            settings.Target,
            settings.Clients,
            settings.Size,
            Math.Round(seconds, 3),
            messages,
            errors,
            Math.Round(messages / seconds, 1),
            Math.Round(messages * (double)settings.Size / seconds / 1_000_000, 3),
            any ? Ms(latencies.GetMean()) : 0,
            any ? Ms(latencies.GetValueAtPercentile(50)) : 0,
            any ? Ms(latencies.GetValueAtPercentile(90)) : 0,
            any ? Ms(latencies.GetValueAtPercentile(99)) : 0,
            any ? Ms(latencies.GetValueAtPercentile(99.9)) : 0,
            any ? Ms(latencies.GetMaxValue()) : 0,
            measures,
            error);
    }

    public string ToJson() => JsonSerializer.Serialize(this, BenchJson.Relaxed.BenchResult);

    public string ToCsv()
    {
        var values = new object[] { Pattern, Target, Clients, Size, Seconds, Messages, Errors, MessagesPerSecond, MegabytesPerSecond, MeanMs, P50Ms, P90Ms, P99Ms, P999Ms, MaxMs };
        return string.Join(',', CsvColumns) + "\n" + string.Join(',', values.Select(v => Csv(Convert.ToString(v, CultureInfo.InvariantCulture)!)));
    }

    public string ToText()
    {
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        text.AppendLine(c, $"{Pattern} '{Target}': {Clients} client{(Clients == 1 ? string.Empty : "s")}, {Size}-byte messages, {Seconds:0.###} s");
        text.AppendLine(c, $"  messages    {Messages:N0} ({Errors:N0} error{(Errors == 1 ? string.Empty : "s")})");
        text.AppendLine(c, $"  throughput  {MessagesPerSecond:N1} msgs/s, {MegabytesPerSecond:0.###} MB/s");
        text.AppendLine(c, $"  latency     p50 {P50Ms:0.###} ms, p90 {P90Ms:0.###} ms, p99 {P99Ms:0.###} ms, p99.9 {P999Ms:0.###} ms, max {MaxMs:0.###} ms (mean {MeanMs:0.###} ms)");
        text.AppendLine(c, $"  measured    {Measures}");
        if (Error is not null)
        {
            text.AppendLine(c, $"  last error  {Error}");
        }

        return text.ToString();
    }

    private static string Csv(string value) =>
        value.AsSpan().IndexOfAny(",\"\n\r") < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}

/// <summary>The JSON form of <see cref="BenchResult"/>: camelCase names, one line.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BenchResult))]
internal sealed partial class BenchJson : JsonSerializerContext
{
    /// <summary>Text as it is (an apostrophe stays an apostrophe): the output is read by programs, not put in HTML.</summary>
    public static BenchJson Relaxed { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
