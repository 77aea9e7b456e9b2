using Iris.Hosting;
using Iris.Overlay.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Iris.Tests.Silo;

public sealed class MessagingOptionsTests
{
    [Fact]
    public async Task A_client_that_would_keep_expired_messages_refuses_to_start_and_says_why()
    {
        // Copies of a request must arrive within their response timeout or not at all (see the request guarantees).
        using var client = Host.CreateDefaultBuilder()
            .UseOrleansClient(orleans => orleans.UseIris(options =>
            {
                options.NetworkKey = Convert.ToBase64String(NetworkKey.Generate().Bytes);
                options.DiscoveryPort = 47990;
            }))
            .ConfigureServices(services => services.Configure<ClientMessagingOptions>(messaging => messaging.DropExpiredMessages = false))
            .Build();

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => client.StartAsync());
        Assert.Contains("DropExpiredMessages", refused.Message);
    }
}
