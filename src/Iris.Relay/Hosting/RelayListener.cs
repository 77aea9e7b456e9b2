using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Iris.Relay.Diagnostics;
using Iris.Relay.Sessions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Iris.Relay.Hosting;

/// <summary>
/// The relay endpoint: accepts Iris client library connections once the silo runs, and on stop closes each one after
/// its member has left (so no request is lost to a member going away), telling the client why.
/// </summary>
internal sealed class RelayListener(IIrisClient iris, IOptions<RelayOptions> options, IOptions<TunnelOptions> tunnels, ILogger<RelayListener> logger)
    : IHostedService, IDisposable
{
    private readonly ConcurrentDictionary<RelayConnection, Task> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listener;
    private Task? _accepting;

    /// <summary>Where the endpoint listens, once started; null when it is off.</summary>
    public IPEndPoint? Endpoint { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            return Task.CompletedTask;
        }

        var endpoint = new IPEndPoint(IPAddress.Parse(settings.Address), settings.Port ?? RelayOptions.DefaultPort);
        var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endpoint);
            listener.Listen(512);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && settings.Port is null)
        {
            listener.Dispose();
            RelayLog.PortTaken(logger, endpoint.ToString());
            return Task.CompletedTask;
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new Iris.Relay.RelayEndpointException($"The Iris relay endpoint cannot listen on {endpoint}: {e.Message}. Iris:Relay:Address must be an address of this machine and Iris:Relay:Port free (or Iris:Relay:Enabled false).", e);
        }

        _listener = listener;
        Endpoint = (IPEndPoint)listener.LocalEndPoint!;
        var context = new RelayContext(iris, settings, tunnels.Value.MaxMessageBytes, logger);
        _accepting = AcceptAsync(listener, context);
        RelayLog.Listening(logger, Endpoint.ToString());
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        if (_accepting is not null)
        {
            await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        var closing = _connections.Keys.Select(connection => connection.StopAsync("the Iris node is shutting down")).ToArray();
        await Task.WhenAll(closing).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public void Dispose()
    {
        // Registered twice (as itself and as a hosted service), so disposed twice.
        if (!_stopping.IsCancellationRequested)
        {
            _stopping.Cancel();
        }

        _listener?.Dispose();
    }

    private async Task AcceptAsync(Socket listener, RelayContext context)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                RelayLog.AcceptFailed(logger, e.Message);
                continue;
            }

            socket.NoDelay = true;
            var connection = new RelayConnection(socket, context);
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _connections[connection] = Task.Run(async () =>
            {
                // Listed before it runs, so that its end always finds its entry to remove.
                await started.Task.ConfigureAwait(false);
                await connection.RunAsync().ConfigureAwait(false);
                _connections.TryRemove(connection, out _);
            });
            started.SetResult();
        }
    }
}
