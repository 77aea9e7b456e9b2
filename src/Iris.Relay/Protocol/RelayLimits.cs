namespace Iris.Relay.Protocol;

/// <summary>What the reader accepts before it allocates: every length is checked against these first.</summary>
/// <param name="MaxMessageBytes">Largest request, reply, broadcast or event.</param>
/// <param name="MaxNameBytes">Largest cluster or topic name, magic or version (a fault string may be as long as a
/// message).</param>
internal sealed record RelayLimits(int MaxMessageBytes, int MaxNameBytes)
{
    /// <summary>Largest timeout a client may give, in milliseconds (about 24 days: what a <see cref="TimeSpan"/> timer
    /// takes).</summary>
    public const ulong MaxTimeoutMs = int.MaxValue;
}
