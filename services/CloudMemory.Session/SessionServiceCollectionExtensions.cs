using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Conversations;
using CloudMemory.Session.Features.Checkpoints;
using CloudMemory.Session.Features.Sessions;
using CloudMemory.Session.Features.SharedContexts;

namespace CloudMemory.Session;

/// <summary>Registers the `session` service.</summary>
public static class SessionServiceCollectionExtensions
{
    /// <summary>App id of this service.</summary>
    public const string AppId = "session";

    /// <summary>Adds the conversation actor, checkpoint workflow and their dependencies.</summary>
    public static IHostApplicationBuilder AddSessionServices(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<SessionOptions>().Bind(builder.Configuration.GetSection(SessionOptions.SectionName))
            .Validate(o => o.SessionTtlSeconds > 0 && o.MaxTurnBytes > 0 && o.MaxSessionBytes > 0, "CloudMemory:Session values must be positive")
            .ValidateOnStart();
        services.AddConversations(builder.Configuration);
        services.AddActor<ConversationActor>();
        services.AddSingleton<CheckpointCoordinator>();
        services.AddWorkflow<CheckpointConversationWorkflow>();
        services.AddWorkflowActivity<SummarizeConversationActivity>();
        services.AddWorkflowActivity<ApplyCheckpointActivity>();
        services.AddSharedContexts();
        return builder;
    }

    /// <summary>Maps the session API.</summary>
    public static IEndpointRouteBuilder MapSessionEndpoints(this IEndpointRouteBuilder endpoints) => endpoints.MapSessionApi().MapSharedContextApi();
}
