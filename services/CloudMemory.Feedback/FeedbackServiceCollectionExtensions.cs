using CloudMemory.BuildingBlocks.Hosting;
using CloudMemory.Feedback.Features.Analysis;
using CloudMemory.Feedback.Features.Erasure;
using CloudMemory.Feedback.Features.Experiences;
using CloudMemory.BuildingBlocks.Workflows;
using CloudMemory.Feedback.Features.Feedback;
using CloudMemory.Feedback.Features.Learning;
using CloudMemory.Feedback.Features.Learning.Activities;
using CloudMemory.Feedback.Features.Learning.Workflows;
using CloudMemory.Feedback.Features.Traces;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;
using CloudMemory.Contracts.Feedback;

namespace CloudMemory.Feedback;

/// <summary>Registers the `feedback` service.</summary>
public static class FeedbackServiceCollectionExtensions
{
    /// <summary>App id of this service.</summary>
    public const string AppId = "feedback";

    /// <summary>Name of the connection string that switches storage to PostgreSQL.</summary>
    public const string ConnectionStringName = "CloudMemory";

    /// <summary>
    /// Adds feedback, analysis, the experience database and the learning loop. Storage is PostgreSQL
    /// when <c>ConnectionStrings:CloudMemory</c> is set, in memory otherwise.
    /// </summary>
    public static IHostApplicationBuilder AddFeedbackServices(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        var connectionString = builder.Configuration.GetConnectionString(ConnectionStringName);
        if (string.IsNullOrEmpty(connectionString))
        {
            services.TryAddSingleton<IFeedbackStore, InMemoryFeedbackStore>();
            services.TryAddSingleton<IExperienceStore, InMemoryExperienceStore>();
            services.TryAddSingleton<ILearningStore, InMemoryLearningStore>();
        }
        else
        {
            services.AddPostgresDataSource(connectionString);
            services.TryAddSingleton<IFeedbackStore>(sp => new PostgresFeedbackStore(sp.GetRequiredService<NpgsqlDataSource>()));
            services.TryAddSingleton<IExperienceStore>(sp => new PostgresExperienceStore(sp.GetRequiredService<NpgsqlDataSource>()));
            services.TryAddSingleton<ILearningStore>(sp => new PostgresLearningStore(sp.GetRequiredService<NpgsqlDataSource>()));
        }
        services.AddStartupTask(async (sp, ct) =>
        {
            await sp.GetRequiredService<IFeedbackStore>().InitializeAsync(ct);
            await sp.GetRequiredService<IExperienceStore>().InitializeAsync(ct);
            await sp.GetRequiredService<ILearningStore>().InitializeAsync(ct);
        });
        services.TryAddSingleton<FeedbackRecorder>();
        services.AddOptions<AnalysisOptions>().Bind(builder.Configuration.GetSection(AnalysisOptions.SectionName))
            .Validate(o => o.MinEvidence >= 1 && o.MinShare is >= 0 and <= 1 && o.MaxRecords >= 1, "analysis thresholds out of range")
            .ValidateOnStart();
        services.TryAddSingleton<FeedbackAnalysisService>();
        services.TryAddSingleton<ExperienceService>();
        services.TryAddSingleton<Features.Traces.TraceReader>();
        services.TryAddSingleton<Features.Traces.TraceAnalysisFeedback>();
        services.AddOptions<LearningOptions>().Bind(builder.Configuration.GetSection(LearningOptions.SectionName))
            .Validate(o => o.TrialShare is > 0 and < 1, "TrialShare must be between 0 and 1")
            .Validate(o => o.Alpha is > 0 and < 0.5, "Alpha must be between 0 and 0.5")
            .Validate(o => o.MinConversationsPerArm >= 1 && o.MaxTrialDuration > TimeSpan.Zero && o.Lookback > TimeSpan.Zero, "trial horizon and periods must be positive")
            .Validate(o => !string.IsNullOrEmpty(o.Metric), "Metric is required")
            .Validate(o => o.Test is LearningOptions.FisherExactTest or LearningOptions.MannWhitneyTest, "Test must be fisher-exact or mann-whitney")
            .ValidateOnStart();
        services.TryAddSingleton<LearningEngine>();
        services.TryAddSingleton<LearningCycleRunner>();
        services.AddWorkflow<RunLearningCycleWorkflow>();
        services.AddWorkflowActivity<EvaluateTrialActivity>();
        services.AddWorkflowActivity<ProposeStrategiesActivity>();
        services.AddWorkflowActivity<RecordLearningCycleActivity>();
        services.AddHostedService<LearningScheduler>();
        return builder;
    }

    /// <summary>Maps the service's endpoints.</summary>
    public static IEndpointRouteBuilder MapFeedbackEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapFeedbackRecordEndpoints();
        endpoints.MapFeedbackAnalysis();
        endpoints.MapExperienceEndpoints();
        endpoints.MapLearningEndpoints();
        endpoints.MapFeedbackErasure();
        endpoints.MapTraceAnalysisFeedback();
        return endpoints;
    }
}
