namespace Iris.Protocol;

/// <summary>One broadcast or publication on its way, with the id its sender gave it once: every hop and every
/// member process hands on or delivers an id once, so a repeated or looping copy is dropped.</summary>
[GenerateSerializer]
[Immutable]
internal readonly record struct Disseminated([property: Id(0)] Guid Id, [property: Id(1)] byte[] Body);
