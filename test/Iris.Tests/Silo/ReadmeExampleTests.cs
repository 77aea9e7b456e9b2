using System.Text.RegularExpressions;
using Iris.Tests.Support;

namespace Iris.Tests.Silo;

/// <summary>The example in the Iris.Grains.Abstractions README is the sample program, which the solution builds.</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void The_readme_example_is_the_sample_program_word_for_word()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "Iris.Grains.Abstractions", "README.md"));
        var sample = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "samples", "Iris.Samples.Patterns", "Program.cs"));
        var example = Regex.Match(readme, "```csharp\n(.*?)```", RegexOptions.Singleline);
        Assert.True(example.Success, "the README has no C# example");
        Assert.Equal(sample.ReplaceLineEndings("\n"), example.Groups[1].Value.ReplaceLineEndings("\n"));
        Assert.Contains("OpenTunnelAsync", sample);
    }
}
