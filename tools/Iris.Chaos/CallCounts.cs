namespace Iris.Chaos;

/// <summary>An Orleans call filter on the overload callers' client that counts the calls it makes by method and outcome
/// (<c>IMemberHost.Request -> MemberRefusedException</c>, …), counted from the last <see cref="Start"/>: how many calls
/// between processes a request to an overloaded cluster costs.</summary>
internal sealed class CallCounts : IOutgoingGrainCallFilter
{
    private volatile Tally? _calls;

    /// <summary>Counts from now, from zero.</summary>
    public void Start() => _calls = new Tally();

    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        var outcome = "ok";
        try
        {
            await context.Invoke().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            outcome = e.GetType().Name;
            throw;
        }
        finally
        {
            _calls?.Add($"{context.InterfaceName}.{context.MethodName} -> {outcome}");
        }
    }

    public SortedDictionary<string, long> Snapshot() => _calls?.Snapshot() ?? [];
}
