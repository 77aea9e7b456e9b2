namespace Iris.Relay.Sessions;

/// <summary>Awaits what may fail because the connection or tunnel is going anyway; a failure gives the default.</summary>
internal static class Quietly
{
    public static async Task<T?> Await<T>(ValueTask<T> task)
    {
        try
        {
            return await task.ConfigureAwait(false);
        }
        catch (Exception)
        {
            return default;
        }
    }

    public static async Task Await(ValueTask task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Going anyway.
        }
    }
}
