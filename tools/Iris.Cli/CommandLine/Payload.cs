using System.Text;

namespace Iris.Cli.CommandLine;

/// <summary>
/// A message given on the command line: <c>-</c> reads standard input to its end, <c>@path</c> reads the file's bytes,
/// anything else is sent as its UTF-8 text.
/// </summary>
internal static class Payload
{
    public const string Forms = "the message: text (sent as UTF-8), @file (the file's bytes), or - (standard input)";

    public static async Task<byte[]> ReadAsync(string argument, CancellationToken cancellationToken)
    {
        if (argument == "-")
        {
            using var buffer = new MemoryStream();
            await using var input = Console.OpenStandardInput();
            await input.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }

        if (argument.StartsWith('@') && argument.Length > 1)
        {
            var path = argument[1..];
            try
            {
                return await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
            {
                throw new UsageException($"Cannot read the message file '{path}': {e.Message}");
            }
        }

        return Encoding.UTF8.GetBytes(argument);
    }
}
