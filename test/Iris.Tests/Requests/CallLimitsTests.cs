using System.Reflection;
using Iris.Protocol;

namespace Iris.Tests.Requests;

public sealed class CallLimitsTests
{
    [Fact]
    public void The_cluster_grains_response_timeout_outlasts_the_longest_request_timeout()
    {
        // Otherwise a caller of IClusterGrain.Request with a long timeout hears Orleans' own timeout, not Iris' errors.
        var attribute = typeof(IClusterGrain).GetMethod(nameof(IClusterGrain.Request))!.GetCustomAttribute<ResponseTimeoutAttribute>();
        Assert.NotNull(attribute);
        Assert.True(attribute.Timeout > CallLimits.MaxTimeout + TimeSpan.FromSeconds(10), $"{attribute.Timeout}");
    }
}
