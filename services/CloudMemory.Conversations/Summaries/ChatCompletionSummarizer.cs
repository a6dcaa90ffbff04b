using System.ClientModel;
using System.Text;
using CloudMemory.Conversations.Text;
using OpenAI;
using OpenAI.Chat;

namespace CloudMemory.Conversations.Summaries;

/// <summary>Configuration of the OpenAI-compatible chat endpoint (section <c>CloudMemory:Llm</c>).</summary>
public sealed class LlmOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "CloudMemory:Llm";

    /// <summary>Base URL, e.g. https://api.openai.com/v1 or https://NAME.openai.azure.com/openai/v1.</summary>
    public string? Endpoint { get; set; }

    /// <summary>API key.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Model (or Azure deployment) name.</summary>
    public string Model { get; set; } = "gpt-4o-mini";

    /// <summary>Per-call timeout.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>True when an endpoint is configured.</summary>
    public bool IsConfigured => !string.IsNullOrWhiteSpace(Endpoint);

    /// <summary>A chat client for the configured endpoint (the OpenAI client retries transient failures).</summary>
    public ChatClient CreateChatClient() =>
        new(Model, new ApiKeyCredential(string.IsNullOrEmpty(ApiKey) ? "unused" : ApiKey), new OpenAIClientOptions { Endpoint = new Uri(Endpoint!), NetworkTimeout = Timeout });
}

/// <summary>
/// Summaries from an OpenAI-compatible chat completions endpoint (OpenAI, Azure OpenAI, or any
/// server speaking the same API), with the seed's prompt; safety facts are re-checked afterwards.
/// </summary>
public sealed class ChatCompletionSummarizer : ISummarizer
{
    private readonly ChatClient _client;
    private readonly LlmOptions _options;

    /// <summary>Creates the summarizer for the configured endpoint.</summary>
    public ChatCompletionSummarizer(LlmOptions options)
    {
        _options = options;
        _client = options.CreateChatClient();
    }

    /// <inheritdoc />
    public string Name => "llm";

    /// <inheritdoc />
    public async Task<string> SummarizeAsync(SummaryInput input, CancellationToken cancellationToken = default)
    {
        var conversation = new StringBuilder();
        foreach (var message in input.Messages)
        {
            conversation.AppendLine(ConversationText.Render(message));
        }
        var profile = input.Profile;
        var prompt = $"""
            Write a concise summary of the conversation below for the assistant's memory.
            Requirements:
            1. Keep the main symptoms and their duration.
            2. Keep allergies and relevant medical history (allergies are safety-critical: never omit them).
            3. Keep the advice given and key decisions.
            4. About 100 characters for the new part; write in the conversation's language.
            5. Start from the previous summary and extend it (the result replaces it).

            Previous summary: {(input.PreviousSummary.Length == 0 ? "(none)" : input.PreviousSummary)}
            Known allergies: {(profile.Allergies.Count == 0 ? "(none)" : string.Join(", ", profile.Allergies))}
            Chronic diseases: {(profile.ChronicDiseases.Count == 0 ? "(none)" : string.Join(", ", profile.ChronicDiseases))}

            Conversation:
            {conversation}
            Summary:
            """;
        var completion = await _client.CompleteChatAsync([new UserChatMessage(prompt)], new ChatCompletionOptions { Temperature = 0.2f }, cancellationToken);
        var text = string.Concat(completion.Value.Content.Select(p => p.Text)).Trim();
        if (text.Length == 0)
        {
            throw new InvalidOperationException($"the model '{_options.Model}' returned an empty summary");
        }
        return SummarySafety.EnsureSafetyFacts(text, profile);
    }
}
