using Microsoft.Extensions.Options;

namespace Iris.Hosting;

/// <summary>Where an Iris silo listens. Bound from the <c>Iris:Silo</c> configuration section, then changed by the action
/// given to <c>UseIris</c>; checked at start-up.</summary>
public sealed class IrisSiloOptions
{
    /// <summary>Whether <c>UseIris</c> sets Orleans' endpoints (loopback, the ports below). Turn off where
    /// something else chooses them, such as Orleans' test cluster. Default true.</summary>
    public bool ConfigureEndpoints { get; set; } = true;

    /// <summary>The configuration section these options are bound from.</summary>
    public const string SectionName = "Iris:Silo";

    /// <summary>The default <see cref="SiloPort"/>.</summary>
    public const int DefaultSiloPort = 11111;

    /// <summary>The default <see cref="GatewayPort"/>.</summary>
    public const int DefaultGatewayPort = 30000;

    /// <summary>Port for silo-to-silo traffic, on loopback in development. Default 11111; in development a silo
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

        if (string.IsNullOrWhiteSpace(options.ClusterId) || string.IsNullOrWhiteSpace(options.ServiceId))
        {
            errors.Add("Iris:Silo:ClusterId and ServiceId must not be empty.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
