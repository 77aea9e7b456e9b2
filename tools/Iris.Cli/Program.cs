// iris: talk to an Iris network from a shell. Requests, broadcasts, publications, subscriptions, members, tunnels and
// benchmarks, each as one Orleans client that finds the network as every Iris process does (beacons on loopback and
// the development key by default; Iris:Client settings from the environment, or the global options). See README.md.
using Iris.Cli.Startup;

return await IrisCommandLine.RunAsync(args);
