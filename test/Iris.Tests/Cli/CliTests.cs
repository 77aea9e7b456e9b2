using System.Text.Json;
using Iris.Tests.Support;

namespace Iris.Tests.Cli;

/// <summary>One silo process and one <c>iris serve cli-echo --echo</c> member for all the command-line tests, on a network
/// of their own.</summary>
public sealed class CliNetworkFixture : IAsyncLifetime
{
    public const string EchoCluster = "cli-echo";

    private ChildProcess? _silo;
    private ChildProcess? _echo;

    internal IrisNetwork Network { get; } = new(49000);

    public async Task InitializeAsync()
    {
        _silo = await Network.StartSiloAsync(1);
        _echo = CliProcess.Start(Network, "serve", EchoCluster, "--echo");
        await _echo.WaitForAsync(l => l.Any(x => x.Contains($"serving cluster '{EchoCluster}'", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), "the echo member serving");
    }

    public async Task DisposeAsync()
    {
        foreach (var process in new[] { _echo, _silo })
        {
            if (process is null)
            {
                continue;
            }

            // Ctrl-C, as a user would: the member leaves its cluster and the silo stops cleanly.
            process.Interrupt();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (!process.HasExited && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            await process.DisposeAsync();
        }
    }
}

/// <summary>The <c>iris</c> command (tools/Iris.Cli) run as a real process against a silo process.</summary>
public sealed class CliTests(CliNetworkFixture fixture) : IClassFixture<CliNetworkFixture>
{
    private IrisNetwork Network => fixture.Network;

    [Fact]
    public async Task A_request_to_an_echo_member_prints_the_reply()
    {
        var result = await CliProcess.RunAsync(Network, ["request", CliNetworkFixture.EchoCluster, "hello", "--count", "2"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("hello\nhello\n", result.Output);
        Assert.Equal(string.Empty, result.Error);
    }

    [Fact]
    public async Task A_request_to_a_cluster_without_members_fails_fast_naming_the_cluster()
    {
        // The timeout is far longer than the run may take: the answer "no members" must not wait for it.
        var result = await CliProcess.RunAsync(Network, ["request", "nobody-serves-this", "hi", "--timeout", "60s"]);
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Equal(string.Empty, result.Output);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("'nobody-serves-this'", line, StringComparison.Ordinal);
        Assert.Contains("no members", line, StringComparison.Ordinal);
        Assert.True(result.Elapsed < TimeSpan.FromSeconds(20), result.ToString());
    }

    [Fact]
    public async Task Bench_request_with_json_prints_one_object_with_throughput_and_latency_percentiles()
    {
        var result = await CliProcess.RunAsync(Network, ["bench", "request", CliNetworkFixture.EchoCluster, "--duration", "1", "--warmup", "0", "--clients", "2", "--json"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        using var json = JsonDocument.Parse(result.Output);
        var root = json.RootElement;
        Assert.Equal("request", root.GetProperty("pattern").GetString());
        Assert.Equal(CliNetworkFixture.EchoCluster, root.GetProperty("target").GetString());
        Assert.Equal(1.0, root.GetProperty("seconds").GetDouble());
        Assert.True(root.GetProperty("messages").GetInt64() > 0, result.Output);
        Assert.True(root.GetProperty("messagesPerSecond").GetDouble() > 0, result.Output);
        Assert.True(root.GetProperty("megabytesPerSecond").GetDouble() > 0, result.Output);
        var percentiles = new[] { "p50Ms", "p90Ms", "p99Ms", "p999Ms" }.Select(p => root.GetProperty(p).GetDouble()).ToArray();
        Assert.True(percentiles[0] > 0, result.Output);
        Assert.Equal(percentiles.Order(), percentiles);
    }

    [Fact]
    public async Task Bench_request_against_a_cluster_without_members_fails_with_the_clusters_message()
    {
        var result = await CliProcess.RunAsync(Network, ["bench", "request", "nobody-benched", "--duration", "1", "--json"]);
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Equal(string.Empty, result.Output);
        Assert.Contains("'nobody-benched' has no members", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_publication_reaches_a_subscriber_that_stops_after_count_messages()
    {
        await using var subscriber = CliProcess.Start(Network, "subscribe", "cli-news", "--count", "1");
        await subscriber.WaitForAsync(l => l.Any(x => x.Contains("subscribed to topic 'cli-news'", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), "the subscription");
        var published = await CliProcess.RunAsync(Network, ["publish", "cli-news", "extra"]);
        Assert.True(published.ExitCode == 0, published.ToString());

        await subscriber.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(subscriber.ExitCode == 0, subscriber.Output);
        Assert.Contains("extra", subscriber.Lines);
    }

    [Fact]
    public async Task Status_shows_the_ring_and_the_echo_cluster_with_its_member_process()
    {
        var json = await CliProcess.RunAsync(Network, ["status", "--json"]);
        Assert.True(json.ExitCode == 0, json.ToString());
        var status = JsonDocument.Parse(json.Output).RootElement;
        var silo = Assert.Single(status.GetProperty("silos").EnumerateArray());
        Assert.True(silo.GetProperty("inRing").GetBoolean());
        var splits = silo.GetProperty("rendezvous").EnumerateArray().Where(r => r.GetProperty("name").GetString() == CliNetworkFixture.EchoCluster).ToArray();
        Assert.Equal([0, 1, 2, 3], splits.Select(r => r.GetProperty("split").GetInt32()).Order());
        Assert.All(splits, r => Assert.Contains(r.GetProperty("processes").EnumerateArray(), p => p.GetProperty("process").GetString()!.StartsWith("client/", StringComparison.Ordinal) && p.GetProperty("capacity").GetDouble() > 0));

        var text = await CliProcess.RunAsync(Network, ["status"]);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("Ring: 1 silo answered", text.Output, StringComparison.Ordinal);
        Assert.Contains(CliNetworkFixture.EchoCluster, text.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_subscriber_whose_reader_has_gone_stops_quietly()
    {
        // iris subscribe | head -n 1: once head has its line and exits, the next message has nowhere to go, and the
        // subscriber leaves without an error, as a shell user expects of a command in a pipeline.
        var folder = Directory.CreateTempSubdirectory("iris-pipe-");
        try
        {
            var errors = Path.Combine(folder.FullName, "stderr");
            var status = Path.Combine(folder.FullName, "status");
            var script = $"dotnet '{RepositoryPaths.Program("tools", "Iris.Cli")}' subscribe cli-pipe 2>'{errors}' | head -n 1; echo ${{PIPESTATUS[0]}} >'{status}'";
            await using var pipeline = ChildProcess.Start("bash", ["-c", script], CliProcess.Environment(Network));
            await Eventually.HoldsAsync(() => File.Exists(errors) && File.ReadAllText(errors).Contains("subscribed to topic 'cli-pipe'", StringComparison.Ordinal), "the subscription", TimeSpan.FromSeconds(60));

            // The first message is head's line; those after it find the pipe closed.
            for (var i = 0; !pipeline.HasExited; i++)
            {
                Assert.True(i < 20, $"the subscriber was still running after {i} messages; its errors: {File.ReadAllText(errors)}");
                var published = await CliProcess.RunAsync(Network, ["publish", "cli-pipe", $"message {i}"]);
                Assert.True(published.ExitCode == 0, published.ToString());
                await Task.Delay(200);
            }

            Assert.Equal("message 0", Assert.Single(pipeline.Lines));
            Assert.Equal("0", File.ReadAllText(status).Trim());
            Assert.DoesNotContain(File.ReadAllLines(errors), l => l.StartsWith("iris:", StringComparison.Ordinal) && !l.Contains("subscribed to topic", StringComparison.Ordinal));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Replies_redirected_to_one_file_by_several_commands_follow_each_other_and_a_full_disk_fails()
    {
        // A file keeps the console stream, which writes where the file ends now: two commands in a row, and the
        // status line on standard error in the same file, overwrite nothing.
        var folder = Directory.CreateTempSubdirectory("iris-redirect-");
        try
        {
            var output = Path.Combine(folder.FullName, "out");
            var cli = $"dotnet '{RepositoryPaths.Program("tools", "Iris.Cli")}'";
            var script = $"{{ {cli} request {CliNetworkFixture.EchoCluster} first; {cli} request {CliNetworkFixture.EchoCluster} second; }} >'{output}' 2>&1; echo $?";
            await using (var both = ChildProcess.Start("bash", ["-c", script], CliProcess.Environment(Network)))
            {
                await both.WaitForExitAsync(TimeSpan.FromSeconds(60));
                Assert.Equal("0", both.Lines.Last());
            }

            Assert.Equal("first\nsecond\n", File.ReadAllText(output));

            // A write that fails for any reason but a closed pipe fails the command.
            await using var full = ChildProcess.Start("bash", ["-c", $"{cli} request {CliNetworkFixture.EchoCluster} lost >/dev/full; echo $?"], CliProcess.Environment(Network));
            await full.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal("1", full.Lines.Last());
            Assert.Contains(full.Lines, l => l.StartsWith("iris:", StringComparison.Ordinal) && l.Contains("No space left on device", StringComparison.Ordinal));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_tunnel_sends_each_input_line_and_prints_what_comes_back()
    {
        // The command stops printing once nothing arrived for the linger: on a loaded machine the first echo can take
        // longer than half a second.
        var result = await CliProcess.RunAsync(Network, ["tunnel", CliNetworkFixture.EchoCluster, "--linger", "3s"], input: "one\ntwo\nthree\n");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("one\ntwo\nthree\n", result.Output);
    }

    [Fact]
    public async Task A_command_member_replies_with_its_output_fails_with_its_error_and_leaves_on_ctrl_c()
    {
        const string Script = "read line; if [ \"$line\" = fail ]; then echo \"it broke\" >&2; exit 3; fi; echo \"$IRIS_KIND: $line\"";
        await using var member = CliProcess.Start(Network, "serve", "cli-shell", "--command", Script);
        await member.WaitForAsync(l => l.Any(x => x.Contains("serving cluster 'cli-shell'", StringComparison.Ordinal)), TimeSpan.FromSeconds(60), "the command member serving");

        var reply = await CliProcess.RunAsync(Network, ["request", "cli-shell", "hi"]);
        Assert.True(reply.ExitCode == 0, reply.ToString());
        Assert.Equal("request: hi\n", reply.Output);

        var fault = await CliProcess.RunAsync(Network, ["request", "cli-shell", "fail"]);
        Assert.True(fault.ExitCode == 1, fault.ToString());
        Assert.Contains("'cli-shell' failed the request: it broke (exit code 3)", fault.Error, StringComparison.Ordinal);

        member.Interrupt();
        await member.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(member.ExitCode == 0, member.Output);
        Assert.Contains(member.Lines, l => l.Contains("left cluster 'cli-shell'", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("request")]
    [InlineData("serve cli-echo")]
    [InlineData("bench request cli-echo --json --csv")]
    [InlineData("request cli-echo hi --timeout soon")]
    [InlineData("frobnicate")]
    public async Task Bad_arguments_are_a_usage_error_that_says_what_is_wrong(string arguments)
    {
        // No network: a usage error is found before anything connects.
        var result = await CliProcess.RunAsync(null, arguments.Split(' '));
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal(string.Empty, result.Output);
        Assert.StartsWith("iris: ", result.Error, StringComparison.Ordinal);
        Assert.Contains("--help' for usage.", result.Error, StringComparison.Ordinal);
    }
}
