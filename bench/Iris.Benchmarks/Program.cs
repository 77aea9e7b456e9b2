using System.Globalization;
using System.Text.Json;
using BenchmarkDotNet.Running;
using Iris.Benchmarks;
using Iris.Benchmarks.Paper;

// dotnet run -c Release --project bench/Iris.Benchmarks -- paper [--quick] [--json]
// The paper's workloads beside plain Orleans (and NATS), one run, ratios printed and written to bench/results.
if (args is ["paper", ..])
{
    await Iris.Benchmarks.Paper.PaperCommand.RunAsync(args);
    return;
}

// An Iris silo of the paper harness with counting members, started by the harness as a process of its own.
if (args is ["iris-silo", ..])
{
    await Iris.Benchmarks.Paper.BenchSilo.RunAsync();
    return;
}

// dotnet run -c Release --project bench/Iris.Benchmarks -- clusters [--names 10,1000,100000] [--seconds N] [--json]
// One silo's memory and request rate as the number of cluster names it serves grows (see Paper/ClustersCommand).
if (args is ["clusters", ..])
{
    await ClustersCommand.RunAsync(args);
    return;
}

// A silo of the clusters harness serving many cluster names, started by the harness as a process of its own.
if (args is ["clusters-silo", ..])
{
    await ClustersSilo.RunAsync();
    return;
}

// A plain Orleans silo of the paper harness's baseline, started by the harness as a process of its own.
if (args is ["orleans-silo", ..])
{
    await Iris.Benchmarks.Paper.OrleansBaseline.RunSiloAsync(args);
    return;
}

// dotnet run -c Release --project bench/Iris.Benchmarks -- tunnels
// Runs the tunnel throughput harness (see TunnelThroughput) and exits.
if (args is ["tunnels", ..])
{
    await TunnelThroughput.RunAsync();
    return;
}

// dotnet run -c Release --project bench/Iris.Benchmarks -- requests [--seconds 10] [--callers 16] [--payload 16]
// Runs the request throughput harness (see RequestThroughput) against two silo processes and exits.
if (args is ["requests", ..])
{
    await RequestThroughput.RunAsync(args);
    return;
}

// dotnet run -c Release --project bench/Iris.Benchmarks -- relay [--seconds 5]
// The relay path beside an Orleans client's over the same two silo processes (see RelayThroughput) and exits.
if (args is ["relay", ..])
{
    await RelayThroughput.RunAsync(args);
    return;
}

// dotnet run -c Release --project bench/Iris.Benchmarks -- nats-check [--seconds 3]
// Runs the NATS baseline workloads of the paper harness (see Paper/NatsCheck) against a local nats-server and exits.
if (args is ["nats-check", ..])
{
    await NatsCheck.RunAsync(args);
    return;
}

// dotnet run -c Release --project bench/Iris.Benchmarks -- micro [BenchmarkDotNet arguments]
// Runs the micro-benchmarks of the hot paths (see Micro/MicroCommand) with the memory diagnoser and exits.
if (args is ["micro", ..])
{
    Iris.Benchmarks.Micro.MicroCommand.Run(args[1..]);
    return;
}

// dotnet run -c Release --project bench/Iris.Benchmarks [-- BenchmarkDotNet arguments]
// Runs the transport throughput benchmark, then prints MB/s and frames/s of the encrypted transport and its
// plaintext baseline side by side with their ratio, and writes them to BenchmarkDotNet.Artifacts/transport.json.
var summary = BenchmarkRunner.Run<TransportThroughput>(args: args);
var rows = new List<object>();
Console.WriteLine();
Console.WriteLine($"{"frame",8} {"plaintext MB/s",15} {"AES-GCM MB/s",13} {"plaintext frames/s",19} {"AES-GCM frames/s",17} {"ratio",6}");
foreach (var size in summary.Reports.Select(r => (int)r.BenchmarkCase.Parameters["FrameSize"]).Distinct().Order())
{
    double Seconds(string method) => summary.Reports
        .Single(r => (int)r.BenchmarkCase.Parameters["FrameSize"] == size && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method)
        .ResultStatistics!.Mean / 1e9;

    var plain = Seconds(nameof(TransportThroughput.Plaintext));
    var sealedTime = Seconds(nameof(TransportThroughput.Encrypted));
    var megabytes = TransportThroughput.BytesPerOperation / 1e6;
    var frames = TransportThroughput.BytesPerOperation / (double)size;
    var ratio = plain / sealedTime;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{size,8} {megabytes / plain,15:F1} {megabytes / sealedTime,13:F1} {frames / plain,19:F0} {frames / sealedTime,17:F0} {ratio,6:P0}"));
    rows.Add(new { frameSize = size, plaintextMBps = megabytes / plain, encryptedMBps = megabytes / sealedTime, plaintextFramesPerSecond = frames / plain, encryptedFramesPerSecond = frames / sealedTime, ratio });
}

Directory.CreateDirectory("BenchmarkDotNet.Artifacts");
File.WriteAllText(Path.Combine("BenchmarkDotNet.Artifacts", "transport.json"), JsonSerializer.Serialize(rows));
