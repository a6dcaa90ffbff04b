using System.Net;
using System.Net.Sockets;
using CloudMemory.Contracts.Events;
using YamlDotNet.RepresentationModel;

namespace CloudMemory.Dapr.Tests;

/// <summary>The names in code and the YAML under components/ and dapr.yaml must agree.</summary>
public sealed class ComponentsTests
{
    private static readonly string[] ComponentSets = ["components", "components/in-memory", "components/postgresql"];

    private static YamlMappingNode Load(string relative)
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(RepoPaths.Root, relative));
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents.Single().RootNode;
    }

    private static string? Scalar(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var next))
            {
                return null;
            }
            node = next;
        }
        return (node as YamlScalarNode)?.Value;
    }

    private static IEnumerable<(string File, YamlMappingNode Doc)> Set(string set) =>
        Directory.GetFiles(Path.Combine(RepoPaths.Root, set), "*.yaml").Select(f => (f, Load(Path.GetRelativePath(RepoPaths.Root, f))));

    public static TheoryData<string> Sets() => new(ComponentSets);

    [Theory]
    [MemberData(nameof(Sets))]
    public void EveryComponentNameInCode_ExistsAsMetadataName(string set)
    {
        var names = Set(set).Select(d => Scalar(d.Doc, "metadata", "name")).ToList();
        names.Should().Contain([DaprComponents.StateStore, DaprComponents.PubSub, DaprComponents.Configuration, DaprComponents.Resiliency, Topics.PubSubName]);
        names.Should().OnlyHaveUniqueItems();
    }

    [Theory]
    [MemberData(nameof(Sets))]
    public void Scopes_ListOnlyRealAppIds(string set)
    {
        foreach (var (file, doc) in Set(set))
        {
            if (doc.Children.TryGetValue(new YamlScalarNode("scopes"), out var scopes))
            {
                ((YamlSequenceNode)scopes).Children.Select(s => ((YamlScalarNode)s).Value).Should().BeSubsetOf(DaprComponents.AppIds, file);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Sets))]
    public void StateStore_IsTheActorStateStore(string set)
    {
        var store = Set(set).Single(d => Scalar(d.Doc, "metadata", "name") == DaprComponents.StateStore).Doc;
        var metadata = (YamlSequenceNode)((YamlMappingNode)store.Children[new YamlScalarNode("spec")]).Children[new YamlScalarNode("metadata")];
        metadata.Children.Should().Contain(m => Scalar(m, "name") == "actorStateStore" && Scalar(m, "value") == "true");
    }

    [Theory]
    [InlineData("components")]
    [InlineData("components/postgresql")]
    public void StateStore_SharesKeysBetweenApps_SoContextReadsTheLogSessionWrote(string set)
    {
        // Without PostgreSQL the message log lives in this store; the default per-app-id key prefix
        // would leave the context app blind to what session wrote (in-memory stores are per sidecar anyway).
        var store = Set(set).Single(d => Scalar(d.Doc, "metadata", "name") == DaprComponents.StateStore).Doc;
        var metadata = (YamlSequenceNode)((YamlMappingNode)store.Children[new YamlScalarNode("spec")]).Children[new YamlScalarNode("metadata")];
        metadata.Children.Should().Contain(m => Scalar(m, "name") == "keyPrefix" && Scalar(m, "value") == "name");
    }

    [Fact]
    public void DaprYaml_AppsPointAtProjects_WithDistinctFreePorts()
    {
        var run = Load("dapr.yaml");
        var common = (YamlMappingNode)run.Children[new YamlScalarNode("common")];
        foreach (var path in ((YamlSequenceNode)common.Children[new YamlScalarNode("resourcesPaths")]).Children)
        {
            Directory.Exists(Path.Combine(RepoPaths.Root, ((YamlScalarNode)path).Value!)).Should().BeTrue();
        }
        File.Exists(Path.Combine(RepoPaths.Root, Scalar(common, "configFilePath")!)).Should().BeTrue();

        var apps = ((YamlSequenceNode)run.Children[new YamlScalarNode("apps")]).Children.Cast<YamlMappingNode>().ToList();
        apps.Select(a => Scalar(a, "appID")).Should().BeEquivalentTo(DaprComponents.AppIds);
        var ports = new List<int>();
        foreach (var app in apps)
        {
            var dir = Path.Combine(RepoPaths.Root, Scalar(app, "appDirPath")!);
            Directory.GetFiles(dir, "*.csproj").Should().ContainSingle($"{dir} must be a project directory");
            ports.AddRange(new[] { "appPort", "daprHTTPPort", "daprGRPCPort" }.Select(k => int.Parse(Scalar(app, k)!, System.Globalization.CultureInfo.InvariantCulture)));
        }
        ports.Should().OnlyHaveUniqueItems();
        ports.Should().NotContain([3500, 50001, 50005, 50006, 9090], "those are Dapr's own defaults (single-app sidecar, placement, scheduler, metrics)");
        ports.Should().OnlyContain(p => p > 1024 && p < 32768, "below Linux's ephemeral range, so outgoing connections never hold them");
        foreach (var port in ports)
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Invoking(l => l.Start()).Should().NotThrow($"port {port} must be free");
            listener.Stop();
        }
    }
}
