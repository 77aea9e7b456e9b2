namespace Iris.Calls;

/// <summary>An answer from a call's target that it refused the call; <see cref="NotStarted"/> when it did not start
/// what the call asked for, so that another copy of the same call may still start it.</summary>
internal interface IRefusal
{
    bool NotStarted { get; }
}
