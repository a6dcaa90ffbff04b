using CloudMemory.Context.Features.Compression;
using CloudMemory.Context.Features.Consolidation;
using CloudMemory.Context.Features.Memories;
using CloudMemory.Context.Features.Messages;
using CloudMemory.Context.Features.Query;
using CloudMemory.Context.Features.TurnIndexing;
using CloudMemory.Conversations;

namespace CloudMemory.Context;

/// <summary>Registers the `context` service.</summary>
public static class ContextServiceCollectionExtensions
{
    /// <summary>App id of this service.</summary>
    public const string AppId = "context";

    /// <summary>Adds the message log, context assembly and their dependencies.</summary>
    public static IHostApplicationBuilder AddContextServices(this IHostApplicationBuilder builder)
    {
        builder.Services.AddConversations(builder.Configuration);
        builder.Services.AddLongTermMemory(builder.Configuration);
        builder.Services.AddTurnIndexing(builder.Configuration);
        builder.Services.AddConversationEventHandlers();
        MemoryFeedbackScores.AddMemoryFeedback(builder.Services, ConversationEventHandlers.DeadLetterTopic);
        builder.Services.AddSingleton<MemoryContextService>();
        builder.Services.AddSingleton<RelevantExperienceLookup>();
        builder.Services.AddSingleton<AgentStrategyLookup>();
        builder.Services.AddSingleton<MemoryCompressor>();
        builder.Services.AddSingleton<MemoryCompressionQueue>();
        builder.Services.AddHostedService<AutomaticMemoryCompression>();
        return builder;
    }

    /// <summary>Maps the context API.</summary>
    public static IEndpointRouteBuilder MapContextEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapQueryMemoryContext();
        endpoints.MapMessageLog();
        endpoints.MapMemoryEndpoints();
        endpoints.MapMemoryErasure();
        endpoints.MapMemoryCompression();
        return endpoints;
    }
}
