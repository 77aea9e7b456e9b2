using Iris.Balancing;
using Iris.Dissemination;
using Iris.Members;
using Iris.Requests;
using Iris.Tunnels;
using Microsoft.Extensions.Logging;

namespace Iris.Hosting;

/// <summary>What every Iris process's <see cref="IIrisClient"/> works with, from dependency injection.</summary>
internal sealed class IrisServices(
    IGrainFactory grains, LocalMembers members, LocalTunnels tunnels, MemberDirectory directory, RequestSender requests,
    DisseminationSender dissemination, TimeProvider time, ILogger<IrisServices> logger)
{
    public IGrainFactory Grains => grains;

    public LocalMembers Members => members;

    public LocalTunnels Tunnels => tunnels;

    public MemberDirectory Directory => directory;

    public RequestSender Requests => requests;

    public DisseminationSender Dissemination => dissemination;

    public TimeProvider Time => time;

    public ILogger Logger => logger;
}
