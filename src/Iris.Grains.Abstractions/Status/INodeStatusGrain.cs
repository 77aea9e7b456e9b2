namespace Iris.Status;

/// <summary>A silo's status, on that silo: the grain's key is the silo's address in parsable form
/// (<see cref="SiloAddress.ToParsableString"/>).</summary>
public interface INodeStatusGrain : IGrainWithStringKey
{
    /// <summary>Takes the silo's status now.</summary>
    Task<NodeStatus> GetStatus();
}
