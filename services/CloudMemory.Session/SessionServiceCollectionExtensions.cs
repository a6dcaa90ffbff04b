using CloudMemory.BuildingBlocks.Actors;
using CloudMemory.BuildingBlocks.EventStream;
using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Conversations;
using CloudMemory.Session.Features.Checkpoints;
using CloudMemory.Session.Features.Erasure;
using CloudMemory.Session.Features.Listing;
using CloudMemory.Session.Features.Sessions;
using CloudMemory.Session.Features.SharedContexts;
using CloudMemory.Session.Features.Snapshots;

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
            .ValidateRange($"{SessionOptions.SectionName}:SessionTtlSeconds", o => o.SessionTtlSeconds, 1, int.MaxValue)
            .ValidateRange($"{SessionOptions.SectionName}:MaxTurnBytes", o => o.MaxTurnBytes, 1, int.MaxValue)
            .ValidateRange($"{SessionOptions.SectionName}:MaxSessionBytes", o => o.MaxSessionBytes, 1, int.MaxValue)
            .ValidateRange($"{SessionOptions.SectionName}:CheckpointRecoveryHours", o => o.CheckpointRecoveryHours, 0, 24 * 366)
            .ValidateRange($"{SessionOptions.SectionName}:MaxSnapshots", o => o.MaxSnapshots, 1, 1000)
            .ValidateRange($"{SessionOptions.SectionName}:MaxStoredSnapshots", o => o.MaxStoredSnapshots, 1, 10_000)
            .ValidateOnStart();
        services.AddConversations(builder.Configuration);
        services.AddActor<ConversationActor>();
        services.AddSingleton<CheckpointCoordinator>();
        services.AddSingleton<Features.Erasure.ErasureCoordinator>();
        services.AddWorkflow<CheckpointConversationWorkflow>();
        services.AddWorkflowActivity<SummarizeConversationActivity>();
        services.AddWorkflowActivity<ApplyCheckpointActivity>();
        services.AddSingleton<CheckpointRecovery>();
        services.AddHostedService(sp => sp.GetRequiredService<CheckpointRecovery>());
        services.AddSharedContexts();
        services.AddEventStream();
        return builder;
    }

    /// <summary>Maps the session API and the event stream (<c>GET /v1/events</c>).</summary>
    public static IEndpointRouteBuilder MapSessionEndpoints(this IEndpointRouteBuilder endpoints) => endpoints.MapSessionApi().MapSharedContextApi().MapSharedContextListingApi().MapErasureApi().MapConversationListingApi().MapSnapshotApi().MapEventStream();
}
