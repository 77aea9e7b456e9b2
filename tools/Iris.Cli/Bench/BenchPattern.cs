namespace Iris.Cli.Bench;

/// <summary>What a benchmark sends.</summary>
internal enum BenchPattern
{
    /// <summary>Requests to one member of a cluster, each waiting for its reply.</summary>
    Request,

    /// <summary>Broadcasts to a cluster, each waiting until it reached the benchmark's own member.</summary>
    Broadcast,

    /// <summary>Publications on a topic, each waiting until it reached the benchmark's own subscriber.</summary>
    Publish,

    /// <summary>Messages on tunnels (one per client) to members of a cluster, each waiting for the message back.</summary>
    Tunnel,
}
