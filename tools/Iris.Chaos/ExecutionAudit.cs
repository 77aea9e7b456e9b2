namespace Iris.Chaos;

/// <summary>What the member processes' files say, read after the members stopped: request ids executed more than
/// once anywhere, broadcast ids a member got twice, accepted broadcasts a member never got, and replies the caller saw
/// for requests no member recorded; with an overload, the same for the overloaded clusters' requests, and those that
/// ran although their caller was told the cluster was overloaded.</summary>
internal sealed class ExecutionAudit
{
    public long ExecutedTwice { get; private init; }

    public long ExecutionsRecorded { get; private init; }

    public long BroadcastDuplicates { get; private init; }

    public long BroadcastDeliveriesMissing { get; private init; }

    public long SucceededNotExecuted { get; private init; }

    /// <summary>Requests of the overloaded clusters recorded by the members.</summary>
    public long OverloadExecutionsRecorded { get; private init; }

    /// <summary>Requests of the overloaded clusters that ran more than once.</summary>
    public long OverloadExecutedTwice { get; private init; }

    /// <summary>Requests refused with <c>IrisOverloadedException</c> that a member ran all the same.</summary>
    public long OverloadedButExecuted { get; private init; }

    /// <summary>Up to 8 accepted broadcasts a member never got: the id, when it was sent, and the member's file.</summary>
    public IReadOnlyList<string> MissingBroadcastSamples { get; private init; } = [];

    /// <summary>Reads the members' <paramref name="files"/>, and with an overload the members' files of the overloaded
    /// clusters (<paramref name="overloadFiles"/>) and the ids their callers were refused (<paramref name="refusedFile"/>).</summary>
    public static ExecutionAudit Read(
        IReadOnlyList<string> files, IEnumerable<string> succeeded, IReadOnlyDictionary<string, double> broadcastsAccepted, IReadOnlyList<string> overloadFiles, string? refusedFile)
    {
        var executions = new Dictionary<string, int>(StringComparer.Ordinal);
        var overloadExecutions = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (_, id) in overloadFiles.SelectMany(ExecutionFile.Read))
        {
            overloadExecutions[id] = overloadExecutions.GetValueOrDefault(id) + 1;
        }

        long recorded = 0;
        long broadcastDuplicates = 0;
        long missing = 0;
        var samples = new List<string>();
        foreach (var file in files)
        {
            var broadcasts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (kind, id) in ExecutionFile.Read(file))
            {
                var counts = kind == ExecutionFile.Request ? executions : broadcasts;
                counts[id] = counts.GetValueOrDefault(id) + 1;
                recorded += kind == ExecutionFile.Request ? 1 : 0;
            }

            broadcastDuplicates += broadcasts.Count(b => b.Value > 1);
            foreach (var (id, at) in broadcastsAccepted.Where(b => !broadcasts.ContainsKey(b.Key)).OrderBy(b => b.Value))
            {
                missing++;
                if (samples.Count < 8)
                {
                    samples.Add($"{id} sent at {at:F1}s, not in {Path.GetFileName(file)}");
                }
            }
        }

        return new ExecutionAudit
        {
            ExecutedTwice = executions.Count(e => e.Value > 1),
            ExecutionsRecorded = recorded,
            BroadcastDuplicates = broadcastDuplicates,
            BroadcastDeliveriesMissing = missing,
            SucceededNotExecuted = succeeded.Count(id => !executions.ContainsKey(id)),
            OverloadExecutionsRecorded = overloadExecutions.Values.Sum(),
            OverloadExecutedTwice = overloadExecutions.Count(e => e.Value > 1),
            OverloadedButExecuted = refusedFile is null ? 0 : ExecutionFile.Read(refusedFile).Count(r => overloadExecutions.ContainsKey(r.Id)),
            MissingBroadcastSamples = samples,
        };
    }
}
