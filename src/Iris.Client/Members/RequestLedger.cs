using System.Collections.Concurrent;
using Iris.Protocol;

namespace Iris.Members;

/// <summary>
/// The requests a process's members have started, by id: a request that arrives again (its caller repeated it after
/// losing contact) joins the run in flight, or gets the reply of the finished run, instead of running twice. A run is
/// remembered while it runs and for <see cref="Retention"/> after it ends, far longer than any caller repeats (a
/// caller repeats within its own timeout, at most ten minutes, and its repeats come within seconds of each other).
/// </summary>
internal sealed class RequestLedger(TimeProvider time)
{
    /// <summary>How long a finished run's reply is kept for repeats.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromMinutes(2);

    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<Guid, Entry> _runs = new();
    private long _lastSweep = time.GetTimestamp();
    private int _sweeping;

    public int Count => _runs.Count;

    /// <summary>
    /// The run of request <paramref name="id"/>: the one already started here, or a new one made by
    /// <paramref name="start"/>. A new run whose answer says it never started (<see cref="MemberReply.NotStarted"/>,
    /// or it expired waiting) is forgotten, so a repeat may start it.
    /// </summary>
    public Task<MemberReply> RunOnce(Guid id, Func<Task<MemberReply>> start)
    {
        SweepIfDue();
        var entry = new Entry();
        var existing = _runs.GetOrAdd(id, entry);
        if (existing != entry)
        {
            return existing.Reply.Task;
        }

        _ = CompleteAsync(id, entry, start);
        return entry.Reply.Task;
    }

    private async Task CompleteAsync(Guid id, Entry entry, Func<Task<MemberReply>> start)
    {
        MemberReply reply;
        try
        {
            reply = await start().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            reply = new MemberReply(MemberReplyStatus.Failed, null, e.Message);
        }

        if (reply.NotStarted || reply.Status == MemberReplyStatus.Expired)
        {
            _runs.TryRemove(new KeyValuePair<Guid, Entry>(id, entry));
        }
        else
        {
            Volatile.Write(ref entry.Finished, time.GetTimestamp());
        }

        entry.Reply.TrySetResult(reply);
    }

    private void SweepIfDue()
    {
        if (time.GetElapsedTime(Interlocked.Read(ref _lastSweep)) < SweepInterval || Interlocked.Exchange(ref _sweeping, 1) == 1)
        {
            return;
        }

        try
        {
            Interlocked.Exchange(ref _lastSweep, time.GetTimestamp());
            foreach (var (id, entry) in _runs)
            {
                if (Volatile.Read(ref entry.Finished) is var finished && finished != Entry.Running && time.GetElapsedTime(finished) > Retention)
                {
                    _runs.TryRemove(new KeyValuePair<Guid, Entry>(id, entry));
                }
            }
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private sealed class Entry
    {
        public TaskCompletionSource<MemberReply> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public const long Running = long.MinValue;

        /// <summary>When the run finished (a timestamp), or <see cref="Running"/>.</summary>
        public long Finished = Running;
    }
}
