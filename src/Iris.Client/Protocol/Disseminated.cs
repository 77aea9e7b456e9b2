namespace Iris.Protocol;

/// <summary>One broadcast or publication on its way, with the id its sender gave it once: every hop and every
/// member process hands on or delivers an id once, so a repeated or looping copy is dropped. Its wire form is
/// <see cref="DisseminatedCodec"/>'s.</summary>
[Immutable]
internal readonly record struct Disseminated(Guid Id, byte[] Body)
{
    /// <summary>The sender's span (W3C <c>traceparent</c>) while the sender's process traces: each delivery's span is
    /// its child (<see cref="Diagnostics.IrisTracing"/>). Null otherwise.</summary>
    public string? TraceParent { get; init; }
}
