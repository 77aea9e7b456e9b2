namespace Iris.Calls;

/// <summary>What a failed call between processes says about whether it reached its target.</summary>
internal enum CallFailure
{
    /// <summary>Not a transport failure: the target answered with an error, which is the caller's.</summary>
    Answered,

    /// <summary>The message was refused before delivery; the target did not see it.</summary>
    NotDelivered,

    /// <summary>The target's process is gone (an Orleans client that left); this attempt did not reach it.</summary>
    ProcessGone,

    /// <summary>Contact was lost (a connection or a silo failed): the target may have received it.</summary>
    Unreachable,

    /// <summary>No answer within the call's response timeout (<see cref="CallPolicy.ReaskAfter"/> for calls with an
    /// id): the answer may be coming, or may have been lost on its way; ask again.</summary>
    NoAnswer,
}
