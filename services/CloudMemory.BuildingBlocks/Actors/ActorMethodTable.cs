using System.Reflection;
using System.Text.Json;
using CloudMemory.Contracts;

namespace CloudMemory.BuildingBlocks.Actors;

/// <summary>
/// The methods of an actor type callable by name, with JSON (de)serialization of the argument and
/// result. Both runtimes dispatch through it, so an actor behaves the same on each.
/// </summary>
public sealed class ActorMethodTable
{
    private readonly Dictionary<string, Method> _methods = new(StringComparer.Ordinal);

    /// <summary>Builds the table for <paramref name="actorType"/>.</summary>
    public ActorMethodTable(Type actorType)
    {
        foreach (var info in actorType.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
        {
            if (!typeof(Task).IsAssignableFrom(info.ReturnType))
            {
                continue;
            }
            var parameters = info.GetParameters();
            var data = parameters.Where(p => p.ParameterType != typeof(CancellationToken)).ToArray();
            if (data.Length > 1)
            {
                continue;
            }
            var resultType = info.ReturnType.IsGenericType ? info.ReturnType.GetGenericArguments()[0] : null;
            _methods[info.Name] = new Method(info, data.Length == 1 ? data[0].ParameterType : null, resultType,
                Array.FindIndex(parameters, p => p.ParameterType == typeof(CancellationToken)));
        }
    }

    /// <summary>True if the actor has a method of that name.</summary>
    public bool Contains(string method) => _methods.ContainsKey(method);

    /// <summary>Calls <paramref name="method"/> with the JSON argument; returns the JSON result (empty for void).</summary>
    public async Task<byte[]> InvokeAsync(Actor actor, string method, ReadOnlyMemory<byte> argument, CancellationToken cancellationToken)
    {
        if (!_methods.TryGetValue(method, out var m))
        {
            throw new MissingMethodException(actor.GetType().Name, method);
        }
        var args = new object?[m.Info.GetParameters().Length];
        if (m.ArgumentType is not null)
        {
            var dataIndex = m.CancellationIndex == 0 ? 1 : 0;
            args[dataIndex] = argument.IsEmpty ? null : JsonSerializer.Deserialize(argument.Span, m.ArgumentType, ContractsJson.Options);
        }
        if (m.CancellationIndex >= 0)
        {
            args[m.CancellationIndex] = cancellationToken;
        }
        var task = (Task)m.Info.Invoke(actor, args)!;
        await task;
        if (m.ResultType is null)
        {
            return [];
        }
        var result = m.Info.ReturnType.GetProperty(nameof(Task<int>.Result))!.GetValue(task);
        return JsonSerializer.SerializeToUtf8Bytes(result, m.ResultType, ContractsJson.Options);
    }

    private sealed record Method(MethodInfo Info, Type? ArgumentType, Type? ResultType, int CancellationIndex);
}
