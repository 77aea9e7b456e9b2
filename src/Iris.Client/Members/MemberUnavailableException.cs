namespace Iris.Members;

/// <summary>
/// Thrown by a handler that passes requests on (<see cref="ITimedClusterHandler"/>) when it could not pass this one on
/// at all: the connection to its application is closing or full. The request never started, so the member answers
/// "not here" and the caller's process sends it to another member, as for a member that left.
/// </summary>
internal sealed class MemberUnavailableException(string reason) : Exception(reason);
