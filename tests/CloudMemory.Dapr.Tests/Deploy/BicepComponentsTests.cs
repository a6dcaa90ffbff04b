using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace CloudMemory.Dapr.Tests.Deploy;

/// <summary>
/// Azure Container Apps restates the Dapr components in its own schema (deploy/azure/main.bicep);
/// the two definitions must not drift: same names, types, versions and scopes as components/*.yaml.
/// </summary>
public sealed partial class BicepComponentsTests
{
    private static readonly string Bicep = File.ReadAllText(Path.Combine(RepoPaths.Root, "deploy", "azure", "main.bicep"));

    private sealed record Component(string Name, string Type, string Version, IReadOnlyList<string> Scopes, IReadOnlyList<string> MetadataNames);

    // The deployed set is components/ (the alternatives under components/in-memory and
    // components/postgresql are for local runs). Only kind: Component is a Dapr component;
    // Configuration and Resiliency have no daprComponents counterpart.
    private static List<Component> YamlComponents()
    {
        var components = new List<Component>();
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.Root, "components"), "*.yaml"))
        {
            var yaml = new YamlStream();
            using (var reader = new StreamReader(file))
            {
                yaml.Load(reader);
            }
            var doc = (YamlMappingNode)yaml.Documents.Single().RootNode;
            if (Scalar(doc, "kind") != "Component")
            {
                continue;
            }
            var spec = (YamlMappingNode)doc[new YamlScalarNode("spec")];
            var metadata = spec.Children.TryGetValue(new YamlScalarNode("metadata"), out var m) && m is YamlSequenceNode seq
                ? seq.Children.Select(item => Scalar(item, "name")!).ToList()
                : [];
            var scopes = doc.Children.TryGetValue(new YamlScalarNode("scopes"), out var s)
                ? ((YamlSequenceNode)s).Children.Select(x => ((YamlScalarNode)x).Value!).ToList()
                : [];
            components.Add(new Component(Scalar(doc, "metadata", "name")!, Scalar(spec, "type")!, Scalar(spec, "version")!, scopes, metadata));
        }
        return components;
    }

    private static List<(Component Component, string Body)> BicepComponents()
    {
        var components = new List<(Component, string)>();
        foreach (Match resource in DaprComponentResource().Matches(Bicep))
        {
            var body = Block(Bicep, resource.Index + resource.Length - 1, '{', '}');
            var name = Property(body, "name");
            var scopes = Block(body, body.IndexOf("scopes: [", StringComparison.Ordinal) + "scopes: ".Length, '[', ']');
            var metadata = Block(body, body.IndexOf("metadata: [", StringComparison.Ordinal) + "metadata: ".Length, '[', ']');
            components.Add((new Component(name, Property(body, "componentType"), Property(body, "version"),
                Quoted().Matches(scopes).Select(q => q.Groups[1].Value).ToList(),
                NameProperty().Matches(metadata).Select(n => n.Groups[1].Value).ToList()), body));
        }
        return components;
    }

    [Fact]
    public void BicepDaprComponents_MatchComponentsYaml_NamesTypesVersionsScopes()
    {
        var yaml = YamlComponents();
        var bicep = BicepComponents().Select(b => b.Component).ToList();

        yaml.Should().NotBeEmpty();
        bicep.Select(c => c.Name).Should().BeEquivalentTo(yaml.Select(c => c.Name), "the same components exist in both");
        foreach (var expected in yaml)
        {
            var actual = bicep.Single(c => c.Name == expected.Name);
            actual.Type.Should().Be(expected.Type, $"component '{expected.Name}' type");
            actual.Version.Should().Be(expected.Version, $"component '{expected.Name}' version");
            actual.Scopes.Should().BeEquivalentTo(expected.Scopes, $"component '{expected.Name}' scopes");
            actual.MetadataNames.Should().Contain(expected.MetadataNames, $"component '{expected.Name}' sets every field components/ sets");
        }
    }

    [Fact]
    public void BicepDaprComponents_SecretRefsPointAtDeclaredSecrets_AndActorStateStoreIsSet()
    {
        foreach (var (component, body) in BicepComponents())
        {
            var declared = body.Contains("secrets: [", StringComparison.Ordinal)
                ? NameProperty().Matches(Block(body, body.IndexOf("secrets: [", StringComparison.Ordinal) + "secrets: ".Length, '[', ']')).Select(n => n.Groups[1].Value).ToList()
                : [];
            SecretRef().Matches(body).Select(r => r.Groups[1].Value).Should().BeSubsetOf(declared, $"component '{component.Name}'");
        }
        var store = BicepComponents().Single(b => b.Component.Name == DaprComponents.StateStore).Body;
        ActorStateStore().IsMatch(store).Should().BeTrue("ConversationActor needs the state store to be the actor state store");
    }

    [Fact]
    public void BicepContainerApps_AreTheFourDaprApps_OnPort8080()
    {
        var appIds = Block(Bicep, Bicep.IndexOf("var appIds = [", StringComparison.Ordinal) + "var appIds = ".Length, '[', ']');
        Quoted().Matches(appIds).Select(q => q.Groups[1].Value).Should().BeEquivalentTo(DaprComponents.AppIds);
        var dapr = Block(Bicep, Bicep.IndexOf("dapr: {", StringComparison.Ordinal) + "dapr: ".Length, '{', '}');
        dapr.Should().Contain("enabled: true").And.Contain("appId: appId").And.Contain("appPort: 8080").And.Contain("appProtocol: 'http'");
        Bicep.Should().Contain("name: 'ConnectionStrings__CloudMemory'");
        File.ReadAllText(Path.Combine(RepoPaths.Root, "deploy", "Dockerfile")).Should().Contain("ASPNETCORE_URLS=http://+:8080");
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

    // The first `key: 'value'` of a block: the resource's own property comes before nested ones.
    private static string Property(string body, string key)
    {
        var match = new Regex($@"^\s*{Regex.Escape(key)}:\s*'([^']*)'", RegexOptions.Multiline).Match(body);
        match.Success.Should().BeTrue($"'{key}' in {body}");
        return match.Groups[1].Value;
    }

    // The text between the bracket at `start` and its matching close (Bicep strings here hold no brackets).
    private static string Block(string text, int start, char open, char close)
    {
        text[start].Should().Be(open, "the block starts at an opening bracket");
        var depth = 0;
        for (var i = start; i < text.Length; i++)
        {
            depth += text[i] == open ? 1 : text[i] == close ? -1 : 0;
            if (depth == 0)
            {
                return text[(start + 1)..i];
            }
        }
        throw new InvalidOperationException($"unbalanced {open}{close} from {start}");
    }

    [GeneratedRegex(@"resource\s+\w+\s+'Microsoft\.App/managedEnvironments/daprComponents@[^']+'\s*=\s*\{")]
    private static partial Regex DaprComponentResource();

    [GeneratedRegex(@"'([^']*)'")]
    private static partial Regex Quoted();

    [GeneratedRegex(@"^\s*name:\s*'([^']*)'", RegexOptions.Multiline)]
    private static partial Regex NameProperty();

    [GeneratedRegex(@"secretRef:\s*'([^']*)'")]
    private static partial Regex SecretRef();

    [GeneratedRegex(@"name:\s*'actorStateStore'\s*\n\s*value:\s*'true'")]
    private static partial Regex ActorStateStore();
}
