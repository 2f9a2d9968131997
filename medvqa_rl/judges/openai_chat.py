"""A judge behind any OpenAI-compatible chat endpoint (OpenAI, or vLLM serving BioMistral)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from medvqa_rl.judges.base import Judge, JudgeError, JudgeItem, render_prompt, stated_verdict


class OpenAIJudge(Judge):
    """Concurrent chat requests; the openai client does the timeouts and the retries with backoff.

    The API key is read from the environment variable named by `api_key_env` and kept only inside the
    client: the config (and so every record and W&B) holds the variable's name, never the key.
    api_key_env=null sends a placeholder key, for local servers that need none.
    """

    backend = "openai"  # the judge=<option> that selects it

    def __init__(self, base_url: str, model: str, template: str, api_key_env: str | None = "OPENAI_API_KEY",
                 system_prompt: str | None = None, timeout: float = 30.0, max_retries: int = 2,
                 concurrency: int = 8, max_tokens: int = 4, on_failure: str = "error") -> None:
        super().__init__(on_failure)
        api_key = "EMPTY"
        if api_key_env is not None:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise JudgeError(f"judge.api_key_env: environment variable {api_key_env} is not set "
                                 "(set it, or judge.api_key_env=null for a server without keys)")
        self.model, self.template, self.system_prompt, self.base_url = model, template, system_prompt, base_url
        self.concurrency, self.max_tokens = concurrency, max_tokens
        import openai  # here, not at module level: importing it costs every run ~1 s, and only this judge needs it

        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        self._client_error = openai.OpenAIError

    def __repr__(self) -> str:  # never show the client (it holds the key)
        return f"OpenAIJudge(model={self.model!r})"

    def describe(self) -> str:
        return f"OpenAIJudge(model={self.model!r}, base_url={self.base_url!r})"

    def _judge(self, items: list[JudgeItem]) -> list[float | BaseException]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._request, items))

    def _request(self, item: JudgeItem) -> float | BaseException:
        messages = [{"role": "user", "content": render_prompt(self.template, item)}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        try:
            response = self._client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=self.max_tokens, temperature=0.0)
        except self._client_error as error:  # raised after the client's own retries
            return error
        except ValueError as error:  # a 200 whose body is not JSON (json.JSONDecodeError)
            return JudgeError(f"{self.base_url}: the reply is not JSON ({error})")
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as error:  # {"choices": []}, a body of another shape
            return JudgeError(f"{self.base_url}: the reply holds no choice's message ({type(error).__name__}: {error})")
        try:
            return stated_verdict(content or "")
        except JudgeError as error:
            return error
