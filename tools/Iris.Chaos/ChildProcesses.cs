namespace Iris.Chaos;

/// <summary>Every process the runner started. <see cref="KillAll"/> runs in the runner's finally block, on Ctrl-C and on
/// process exit, so that no silo or member outlives a run, whichever way it ends.</summary>
internal static class ChildProcesses
{
    private static readonly List<ChildProcess> All = [];

    static ChildProcesses() => AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();

    public static void Add(ChildProcess child)
    {
        lock (All)
        {
            All.Add(child);
        }
    }

    public static void KillAll()
    {
        ChildProcess[] children;
        lock (All)
        {
            children = [.. All];
        }

        foreach (var child in children.Where(c => !c.HasExited))
        {
            child.Kill();
        }
    }
}
