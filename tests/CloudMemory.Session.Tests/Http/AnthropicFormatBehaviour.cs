using System.Text;
using System.Text.Json;
using CloudMemory.Contracts.Context;
using CloudMemory.Contracts.Sessions;
using CloudMemory.Session.Tests.Infrastructure;

namespace CloudMemory.Session.Tests.Http;

/// <summary><c>format: "anthropic"</c>: the system prompt apart, tool use and results as content blocks, on each message log.</summary>
public abstract class AnthropicFormatBehaviour : IDisposable
{
    private readonly CloudMemoryFactory _factory;
    private readonly HttpClient _client;

    protected AnthropicFormatBehaviour(LogKind kind)
    {
        _factory = new CloudMemoryFactory(kind);
        _client = _factory.CreateClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        GC.SuppressFinalize(this);
    }

    private const string ToolTurn = """
        {"messages":[
          {"role":"user","content":"How has my blood pressure been?"},
          {"role":"assistant","content":"Let me check.","tool_calls":[{"id":"call_bp","type":"function","function":{"name":"get_blood_pressure","arguments":"{\"days\":7}"}}]},
          {"role":"tool","tool_call_id":"call_bp","content":"120/80, stable"},
          {"role":"assistant","content":"Stable at 120/80."}
        ]}
        """;

    [Fact]
    public async Task Query_InAnthropicFormat_PutsTheSummaryInSystem_AndToolTurnsInContentBlocks()
    {
        var id = "conv-" + Guid.NewGuid().ToString("N")[..10];
        (await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "u1"))).EnsureSuccessStatusCode();
        (await _client.PostJsonAsync($"/v1/sessions/{id}/turns", new WriteTurnRequest(null, null, "I have a headache", "Since when?"))).EnsureSuccessStatusCode();
        (await _client.PostJsonAsync($"/v1/sessions/{id}/checkpoints", new CheckpointRequest("Headache reported.", 1))).EnsureSuccessStatusCode();
        (await _client.PostAsync($"/v1/sessions/{id}/turns", new StringContent(ToolTurn, Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();

        var raw = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Query: "and now?", Format: "anthropic"))).Content.ReadAsStringAsync();
        var root = JsonDocument.Parse(raw).RootElement;

        (root.TryGetProperty("messages", out var openAi) ? openAi.ValueKind : JsonValueKind.Null).Should().Be(JsonValueKind.Null, "the OpenAI array is not sent in this format");
        var anthropic = root.GetProperty("anthropic");
        anthropic.GetProperty("system").GetString().Should().Contain("Headache reported.");
        var messages = anthropic.GetProperty("messages").EnumerateArray().ToList();
        messages.Select(m => m.GetProperty("role").GetString()).Should().EndWith(["user", "assistant", "user", "assistant"], "the tool result is a user message; roles alternate");
        messages[0].GetProperty("role").GetString().Should().Be("user");
        var toolUse = messages[^3].GetProperty("content").EnumerateArray().ToList();
        toolUse.Select(b => b.GetProperty("type").GetString()).Should().Equal("text", "tool_use");
        toolUse[1].GetProperty("id").GetString().Should().Be("call_bp");
        toolUse[1].GetProperty("input").GetProperty("days").GetInt32().Should().Be(7, "arguments become a JSON object");
        var result = messages[^2].GetProperty("content")[0];
        result.GetProperty("type").GetString().Should().Be("tool_result");
        result.GetProperty("tool_use_id").GetString().Should().Be("call_bp");
        result.GetProperty("content").GetString().Should().Be("120/80, stable");
    }

    [Fact]
    public async Task Query_WithAnUnknownFormat_Is400()
    {
        var id = "conv-" + Guid.NewGuid().ToString("N")[..10];
        (await _client.PostJsonAsync("/v1/sessions", new CreateSessionRequest(id, "u1"))).EnsureSuccessStatusCode();
        var problem = await (await _client.PostJsonAsync("/v1/context/query", new MemoryQueryRequest(id, Format: "claude"))).ProblemAsync(400);
        problem.GetProperty("code").GetString().Should().Be("invalid-format");
    }
}

public sealed class InMemoryAnthropicFormatTests() : AnthropicFormatBehaviour(LogKind.InMemory);

public sealed class PostgresAnthropicFormatTests() : AnthropicFormatBehaviour(LogKind.Postgres);
