"""What OpenAI clients send and receive, by surface."""

from app.schemas.openai.chat import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChunkChoice,
    ChunkDelta,
    ContentPart,
    FunctionCall,
    ImageURL,
    Role,
    StreamOptions,
    ToolCall,
)
from app.schemas.openai.common import ErrorDetail, ErrorResponse, Usage
from app.schemas.openai.completions import CompletionChoice, CompletionRequest, TextCompletion
from app.schemas.openai.models import Model, ModelList

__all__ = [
    "AssistantMessage",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "Choice",
    "ChunkChoice",
    "ChunkDelta",
    "CompletionChoice",
    "CompletionRequest",
    "ContentPart",
    "ErrorDetail",
    "ErrorResponse",
    "FunctionCall",
    "ImageURL",
    "Model",
    "ModelList",
    "Role",
    "StreamOptions",
    "TextCompletion",
    "ToolCall",
    "Usage",
]
