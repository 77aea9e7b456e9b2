using System.Net;
using Microsoft.Extensions.Options;

namespace Iris.Hosting;

/// <summary>Checks <see cref="IrisClientOptions"/> at start-up.</summary>
internal sealed class IrisClientOptionsValidator : IValidateOptions<IrisClientOptions>
{
    public ValidateOptionsResult Validate(string? name, IrisClientOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ClusterId) || string.IsNullOrWhiteSpace(options.ServiceId))
        {
            errors.Add("Iris:Client:ClusterId and ServiceId must not be empty.");
        }

        if (options.DiscoveryPort is < 1 or > 65535)
        {
            errors.Add($"Iris:Client:DiscoveryPort must be a UDP port from 1 to 65535; it is {options.DiscoveryPort}.");
        }

        foreach (var gateway in options.Gateways)
        {
            if (!IPEndPoint.TryParse(gateway.Replace("tcp://", string.Empty, StringComparison.Ordinal), out _))
            {
                errors.Add($"Iris:Client:Gateways has '{gateway}', which is not an <ip>:<port> endpoint.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
