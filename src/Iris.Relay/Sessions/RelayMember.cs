using System.Collections.Concurrent;
using Iris.Members;
using Iris.Relay.Protocol;

namespace Iris.Relay.Sessions;

/// <summary>
/// A relay connection registered as a member of a cluster: the handler the silo's member host runs, passing requests,
/// broadcasts and tunnels on to the client application. The member host keeps the limits and the at-most-once ledger
/// as for any member; a request goes to the client with the time its caller still waits, and a reply that comes after
/// that is dropped.
/// </summary>
internal sealed class RelayMember(RelayConnection connection, string cluster) : ITimedClusterHandler, IQueueingHandler
{
    /// <summary>The time left given to a request when the member host does not say (it always does).</summary>
    private static readonly TimeSpan UnknownRemaining = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<RelayFrame>> _pending = new();
    private long _lastId;
    private volatile string? _gone;

    public string Cluster => cluster;

    public Task<byte[]> HandleRequestAsync(byte[] request, CancellationToken cancellationToken) =>
        HandleRequestAsync(request, UnknownRemaining, cancellationToken);

    public async Task<byte[]> HandleRequestAsync(byte[] request, TimeSpan remaining, CancellationToken cancellationToken)
    {
        if (_gone is { } reason)
        {
            throw new MemberUnavailableException(reason);
        }

        var id = (ulong)Interlocked.Increment(ref _lastId);
        var answer = new TaskCompletionSource<RelayFrame>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        try
        {
            // The client's timer starts when the request arrives there; it is given at least a millisecond, as a
            // request whose time is up by then never reaches the member host's handler at all.
            var timeoutMs = (ulong)Math.Max(1, Math.Ceiling(remaining.TotalMilliseconds));
            if (!connection.Push(RelayOut.Request(id, request, timeoutMs)))
            {
                throw new MemberUnavailableException(_gone ?? $"the relay connection of this member of cluster '{cluster}' is closing");
            }

            // A connection that failed after the member failed its requests would leave this one waiting for nothing.
            if (_gone is not null)
            {
                answer.TrySetException(Lost());
            }

            var reply = await answer.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return reply.Flag ? reply.Data : throw new RelayFaultException(reply.Text ?? string.Empty);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    public Task HandleBroadcastAsync(byte[] message, CancellationToken cancellationToken)
    {
        // Best effort, as the protocol says: a client whose queue is full loses its connection, not the silo its memory.
        connection.Push(RelayOut.Broadcast(message));
        return Task.CompletedTask;
    }

    public Task HandleTunnelAsync(ITunnel tunnel, CancellationToken cancellationToken) => connection.ServeTunnelAsync(tunnel, cancellationToken);

    /// <summary>The client's reply to request <paramref name="reply"/>.Id; a reply to nothing waiting (late, or
    /// unknown) is dropped.</summary>
    public void Complete(in RelayFrame reply)
    {
        if (_pending.TryRemove(reply.Id, out var answer))
        {
            answer.TrySetResult(reply);
        }
    }

    /// <summary>The connection is going: requests that have not reached it go to other members, those it holds fail
    /// (their outcome is unknown).</summary>
    public void Fail(string reason)
    {
        _gone = reason;
        foreach (var id in _pending.Keys)
        {
            if (_pending.TryRemove(id, out var answer))
            {
                answer.TrySetException(Lost());
            }
        }
    }

    private IOException Lost() =>
        new($"the relay client serving cluster '{cluster}' lost its connection while it held the request ({_gone}); the request may or may not have run");
}

/// <summary>A relay member's application failed the request; the message is the client's fault string, unchanged, so
/// that it reaches the caller as <see cref="RemoteException.RemoteMessage"/>.</summary>
internal sealed class RelayFaultException(string fault) : Exception(fault);
