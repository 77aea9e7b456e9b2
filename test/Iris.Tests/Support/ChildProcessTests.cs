namespace Iris.Tests.Support;

/// <summary>The test's own process wrapper: what a test reads of a process on its way out must all be there.</summary>
public class ChildProcessTests
{
    [Fact]
    public async Task A_process_seen_exited_has_every_line_it_wrote_read()
    {
        // Many lines written just before the exit, on both streams: the process ends while they are still being read.
        for (var run = 0; run < 5; run++)
        {
            await using var child = ChildProcess.Start("sh", ["-c", "seq 1 20000; seq 1 20000 >&2; echo last line; exit 3"]);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (!child.HasExited)
            {
                Assert.True(DateTime.UtcNow < deadline, "the process did not exit within 30 s");
                await Task.Delay(1);
            }

            Assert.Equal(3, child.ExitCode);
            Assert.Contains("last line", child.Lines);
            Assert.Equal(40_001, child.Lines.Length);
        }
    }

    [Fact]
    public async Task Waiting_for_a_line_written_just_before_the_exit_sees_it()
    {
        for (var run = 0; run < 5; run++)
        {
            await using var child = ChildProcess.Start("sh", ["-c", "seq 1 20000; echo READY; exit 0"]);
            await child.WaitForAsync(lines => lines.Contains("READY"), TimeSpan.FromSeconds(30), "the last line");
        }
    }
}
