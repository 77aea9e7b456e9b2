namespace Iris.Protocol;

/// <summary>A member host's reply to a request, with the capacity its process offers the cluster as the reply left
/// (see <see cref="Members.LocalMembers.Capacity"/>): callers weigh members by what they report with every reply, not
/// only by what the rendezvous heard at the last renewal.</summary>
[GenerateSerializer]
[Immutable]
internal readonly record struct MemberAnswer([property: Id(0)] byte[] Data, [property: Id(1)] double Capacity);
