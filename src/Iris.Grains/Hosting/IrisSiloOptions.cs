using System.Net;
using System.Net.Sockets;
using Iris.Overlay.Hosting;
using Microsoft.Extensions.Options;

namespace Iris.Hosting;

/// <summary>Where an Iris silo listens. Bound from the <c>Iris:Silo</c> configuration section, then changed by the action
/// given to <c>UseIris</c>; checked at start-up.</summary>
public sealed class IrisSiloOptions
{
    /// <summary>Whether <c>UseIris</c> sets Orleans' endpoints (<see cref="Address"/> and the ports below). Turn off
    /// where something else chooses them, such as Orleans' test cluster. Default true.</summary>
    public bool ConfigureEndpoints { get; set; } = true;

    /// <summary>The configuration section these options are bound from.</summary>
    public const string SectionName = "Iris:Silo";

    /// <summary>The default <see cref="SiloPort"/>.</summary>
    public const int DefaultSiloPort = 11111;

    /// <summary>The default <see cref="GatewayPort"/>.</summary>
    public const int DefaultGatewayPort = 30000;

    /// <summary>
    /// The configuration section of Orleans' failure detection (<c>ClusterMembershipOptions</c>: <c>ProbeTimeout</c>,
    /// <c>NumMissedProbesLimit</c>, <c>NumVotesForDeathDeclaration</c>, …), bound by <c>UseIris</c>. Orleans' defaults
    /// apply where nothing is set; with them a silo cut off from the others is declared dead no sooner than a minute
    /// after its last message arrived (<c>MaxProbeTimeout</c>, four times <c>ProbeTimeout</c>, times
    /// <c>NumMissedProbesLimit</c>), and until then calls that need it wait.
    /// </summary>
    public const string MembershipSectionName = SectionName + ":Membership";

    /// <summary>The configuration key of <see cref="Address"/>.</summary>
    public const string AddressSetting = SectionName + ":" + nameof(Address);

    /// <summary>
    /// IP address the silo listens on for other silos (<see cref="SiloPort"/>) and for Orleans clients
    /// (<see cref="GatewayPort"/>), and advertises to both: in the membership table and in the overlay's beacons. It
    /// must be an address of this machine that the other silos and clients can reach. Default: the overlay's address,
    /// that is <c>Iris:Overlay:ListenAddress</c> when set, else 127.0.0.1 in development, else the first IPv4 address
    /// of a network interface that is up and not loopback. Silos on several machines need an address other than
    /// loopback: the default gives them one outside development.
    /// </summary>
    public string? Address { get; set; }

    /// <summary>Port for silo-to-silo traffic, on <see cref="Address"/>. Default 11111; in development a silo
    /// moves to a free port when the default is taken.</summary>
    public int SiloPort { get; set; } = DefaultSiloPort;

    /// <summary>Port Orleans clients connect to. Default 30000, moved like <see cref="SiloPort"/>.</summary>
    public int GatewayPort { get; set; } = DefaultGatewayPort;

    /// <summary>When set, the silo serves this cluster with a member that echoes every request: a check that the
    /// deployment works end to end. Default none.</summary>
    public string? EchoCluster { get; set; }

    /// <summary>Orleans cluster id: silos with the same id form one cluster. Default <c>iris</c>.</summary>
    public string ClusterId { get; set; } = "iris";

    /// <summary>Orleans service id: stays the same across deployments of one service. Default <c>iris</c>.</summary>
    public string ServiceId { get; set; } = "iris";
}

/// <summary>Checks <see cref="IrisSiloOptions"/> at start-up.</summary>
internal sealed class IrisSiloOptionsValidator : IValidateOptions<IrisSiloOptions>
{
    public ValidateOptionsResult Validate(string? name, IrisSiloOptions options)
    {
        var errors = new List<string>();
        if (options.SiloPort is < 1 or > 65535)
        {
            errors.Add($"Iris:Silo:SiloPort must be a TCP port from 1 to 65535; it is {options.SiloPort}.");
        }

        if (options.GatewayPort is < 1 or > 65535)
        {
            errors.Add($"Iris:Silo:GatewayPort must be a TCP port from 1 to 65535; it is {options.GatewayPort}.");
        }

        if (options.SiloPort == options.GatewayPort)
        {
            errors.Add($"Iris:Silo:SiloPort and GatewayPort must differ; both are {options.SiloPort}.");
        }

        if (AddressError(options.Address) is { } address)
        {
            errors.Add(address);
        }

        if (string.IsNullOrWhiteSpace(options.ClusterId) || string.IsNullOrWhiteSpace(options.ServiceId))
        {
            errors.Add("Iris:Silo:ClusterId and ServiceId must not be empty.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>What is wrong with <paramref name="text"/> as the silo's address; null when nothing is (or it is not
    /// set, and the overlay's address is taken).</summary>
    internal static string? AddressError(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        const string Hint = "give the IP address of this machine at which other silos and clients reach it, such as 10.0.0.5, or leave it unset to use the overlay's address";
        if (!HostAddress.TryParse(text, out var address))
        {
            return $"{IrisSiloOptions.AddressSetting} '{text}' is not an IP address: {Hint}.";
        }

        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || address.Equals(IPAddress.Broadcast)
            || address.IsIPv6Multicast || (address.AddressFamily == AddressFamily.InterNetwork && address.GetAddressBytes()[0] is >= 224 and <= 239))
        {
            return $"{IrisSiloOptions.AddressSetting} is {address}, which a silo cannot be reached at: {Hint}.";
        }

        return null;
    }
}
