using System.Net;
using Iris.Hosting;
using Iris.Overlay.Hosting;
using Iris.Overlay.Security;
using Iris.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Iris.Tests.Silo;

/// <summary>Where a silo listens and what it advertises (<c>Iris:Silo:Address</c>), and how a wrong value is reported.</summary>
public sealed class SiloAddressTests
{
    /// <summary>Orleans' endpoints of a silo host built (not started) with <c>UseIris</c> and these settings.</summary>
    private static EndpointOptions Endpoints(string environment, params (string Key, string Value)[] settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = environment, DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)));
        builder.UseOrleans(silo => silo.UseIris());
        using var host = builder.Build();
        return host.Services.GetRequiredService<IOptions<EndpointOptions>>().Value;
    }

    [Fact]
    public void In_development_a_silo_listens_and_advertises_on_loopback_by_default()
    {
        var endpoints = Endpoints(Environments.Development);
        Assert.Equal(IPAddress.Loopback, endpoints.AdvertisedIPAddress);
        Assert.Equal(IrisSiloOptions.DefaultSiloPort, endpoints.SiloPort);
        Assert.Equal(IrisSiloOptions.DefaultGatewayPort, endpoints.GatewayPort);

        // Orleans listens where it advertises unless told otherwise: one address for both.
        Assert.Null(endpoints.SiloListeningEndpoint);
        Assert.Null(endpoints.GatewayListeningEndpoint);
    }

    [Fact]
    public void In_production_a_silo_takes_the_overlay_listen_address_by_default()
    {
        var endpoints = Endpoints(Environments.Production, ("Iris:Overlay:ListenAddress", "10.213.7.5"));
        Assert.Equal(IPAddress.Parse("10.213.7.5"), endpoints.AdvertisedIPAddress);
    }

    [Fact]
    public void In_production_with_nothing_set_the_silo_and_the_overlay_take_the_same_interface_address()
    {
        var expected = HostAddress.FirstUpIPv4();
        if (expected is null)
        {
            // No interface other than loopback here: the rule has nothing to pick (the overlay fails the same way).
            Assert.Throws<InvalidOperationException>(() => Endpoints(Environments.Production));
            return;
        }

        Assert.Equal(expected, Endpoints(Environments.Production).AdvertisedIPAddress);
        Assert.Equal(expected, OverlayHost.ListenAddress(new OverlayOptions(), development: false));
    }

    [Fact]
    public void A_configured_silo_address_wins_over_the_overlay_address_and_the_development_default()
    {
        Assert.Equal(IPAddress.Parse("10.213.7.6"), Endpoints(Environments.Production, ("Iris:Overlay:ListenAddress", "10.213.7.5"), ("Iris:Silo:Address", "10.213.7.6")).AdvertisedIPAddress);
        Assert.Equal(IPAddress.Parse("10.213.7.6"), Endpoints(Environments.Development, ("Iris:Silo:Address", " 10.213.7.6 ")).AdvertisedIPAddress);
        Assert.Equal(IPAddress.IPv6Loopback, Endpoints(Environments.Development, ("Iris:Silo:Address", "::1")).AdvertisedIPAddress);
    }

    [Theory]
    [InlineData("not-an-address", "is not an IP address")]
    [InlineData("10.0.0", "is not an IP address")]
    [InlineData("0.0.0.0", "cannot be reached at")]
    [InlineData("::", "cannot be reached at")]
    [InlineData("255.255.255.255", "cannot be reached at")]
    [InlineData("239.1.2.3", "cannot be reached at")]
    [InlineData("ff02::1", "cannot be reached at")]
    public void A_silo_address_that_cannot_be_advertised_is_refused_with_the_setting_named(string address, string why)
    {
        var result = new IrisSiloOptionsValidator().Validate(null, new IrisSiloOptions { Address = address });
        Assert.True(result.Failed, $"{address} was accepted");
        var failure = Assert.Single(result.Failures!);
        Assert.Contains("Iris:Silo:Address", failure, StringComparison.Ordinal);
        Assert.Contains(why, failure, StringComparison.Ordinal);

        // The same message stops a host at start-up, before Orleans sees the address.
        var error = Assert.Throws<OptionsValidationException>(() => Endpoints(Environments.Production, ("Iris:Silo:Address", address)));
        Assert.Contains("Iris:Silo:Address", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("192.0.2.10")]
    [InlineData("127.0.0.1")]
    [InlineData("fd00::5")]
    public void An_unset_or_unicast_silo_address_is_accepted(string? address) =>
        Assert.False(new IrisSiloOptionsValidator().Validate(null, new IrisSiloOptions { Address = address }).Failed);

    [Fact]
    public async Task A_silo_process_given_a_bad_address_refuses_to_start_and_says_which_setting_is_wrong()
    {
        // Production, so the default would not be loopback; discovery off and the overlay on loopback, so nothing
        // would leave this machine even if it started.
        await using var silo = ChildProcess.Start("dotnet", [RepositoryPaths.Program("src", "Iris.Silo")], new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["Iris__Network__Key"] = Convert.ToBase64String(NetworkKey.Generate().Bytes),
            ["Iris__Network__Discovery__Scope"] = "None",
            ["Iris__Overlay__ListenAddress"] = "127.0.0.1",
            ["Iris__Silo__Address"] = "10.0.0.300",
        });
        await silo.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, silo.ExitCode);
        Assert.Contains(silo.Lines, l => l.Contains("Iris silo cannot start: Iris:Silo:Address '10.0.0.300' is not an IP address", StringComparison.Ordinal));
        Assert.DoesNotContain(silo.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }
}
