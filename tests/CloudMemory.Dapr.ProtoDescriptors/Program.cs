using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Reflection;

// Usage: ProtoDescriptors <output.protoset> <service full name>...
// Writes every proto file descriptor embedded in Dapr.Protos (the runtime API) and in Dapr.Workflow
// (Dapr's fork of the durabletask TaskHubSidecarService), with their imports, dependencies first,
// as one FileDescriptorSet, and prints the file that declares each requested service, one a line,
// so the build can hand exactly those files to protoc.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ProtoDescriptors <output.protoset> <service full name>...");
    return 2;
}

var roots = new[] { typeof(Dapr.Client.Autogen.Grpc.v1.Dapr).Assembly, typeof(Dapr.DurableTask.Protobuf.TaskHubSidecarService).Assembly }
    .SelectMany(a => a.GetTypes())
    .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static))
    .Where(p => p?.PropertyType == typeof(FileDescriptor))
    .Select(p => (FileDescriptor)p!.GetValue(null)!)
    .ToList();

var ordered = new List<FileDescriptor>();
var seen = new HashSet<string>(StringComparer.Ordinal);
void Add(FileDescriptor file)
{
    if (!seen.Add(file.Name))
    {
        return;
    }
    foreach (var dependency in file.Dependencies)
    {
        Add(dependency);
    }
    ordered.Add(file);
}
roots.ForEach(Add);

var set = new FileDescriptorSet();
set.File.AddRange(ordered.Select(f => FileDescriptorProto.Parser.ParseFrom(f.SerializedData)));
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(args[0]))!);
File.WriteAllBytes(args[0], set.ToByteArray());

foreach (var service in args.Skip(1))
{
    var file = ordered.FirstOrDefault(f => f.Services.Any(s => s.FullName == service));
    if (file is null)
    {
        Console.Error.WriteLine($"no descriptor in Dapr.Protos or Dapr.Workflow declares service {service}");
        return 1;
    }
    Console.WriteLine(file.Name);
}
return 0;
