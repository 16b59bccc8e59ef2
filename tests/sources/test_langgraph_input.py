"""What deer-flow's graph receives for a chat request: the state and config its server gives."""

from __future__ import annotations

from langgraph.types import Command

from streaming.api.requests import ChatRequest
from streaming.sources.langgraph_input import workflow_config, workflow_input

QUESTION = {"role": "user", "content": "茶的历史"}
ANSWER = {"role": "assistant", "content": "Which era?"}


def test_the_state_carries_the_conversation_the_topic_and_the_locale() -> None:
    request = ChatRequest.model_validate(
        {
            "messages": [QUESTION, ANSWER, {"role": "user", "content": "Tang"}],
            "locale": "zh-CN",
            "auto_accepted_plan": True,
            "enable_clarification": True,
            "max_clarification_rounds": 2,
            "enable_background_investigation": False,
        }
    )

    state = workflow_input(request)

    assert isinstance(state, dict)
    assert state["messages"][0] == QUESTION
    assert {key: value for key, value in state.items() if key != "messages"} == {
        "plan_iterations": 0,
        "final_report": "",
        "current_plan": None,
        "observations": [],
        "auto_accepted_plan": True,
        "enable_background_investigation": False,
        "research_topic": "Tang",
        "clarification_history": ["茶的历史", "Tang"],
        "clarified_research_topic": "茶的历史 - Tang",
        "enable_clarification": True,
        "max_clarification_rounds": 2,
        "locale": "zh-CN",
    }


def test_feedback_on_a_plan_resumes_the_interrupt() -> None:
    request = ChatRequest.model_validate(
        {"interrupt_feedback": "edit_plan", "messages": [{"role": "user", "content": "Add prices"}]}
    )

    resume = workflow_input(request)

    assert isinstance(resume, Command)
    assert resume.resume == "[edit_plan] Add prices"


def test_the_options_go_under_configurable_and_the_step_limit_at_the_top() -> None:
    request = ChatRequest.model_validate(
        {
            "resources": [{"uri": "rag://tea", "title": "Tea notes"}],
            "max_plan_iterations": 2,
            "max_step_num": 5,
            "max_search_results": 7,
            "report_style": "news",
            "enable_deep_thinking": True,
            "enable_web_search": False,
            "interrupt_before_tools": ["web_search"],
            "locale": "zh-CN",
        }
    )

    config = workflow_config(request, thread_id="t-1", mcp_settings={}, recursion_limit=25)

    options = config["configurable"]
    assert [resource.title for resource in options.pop("resources")] == ["Tea notes"]
    assert config == {
        "recursion_limit": 25,
        "configurable": {
            "thread_id": "t-1",
            "max_plan_iterations": 2,
            "max_step_num": 5,
            "max_search_results": 7,
            "mcp_settings": {},
            "enable_web_search": False,
            "report_style": "news",
            "enable_deep_thinking": True,
            "interrupt_before_tools": ["web_search"],
        },
    }


def test_options_that_are_none_are_left_out_as_langchain_leaves_out_deer_flows() -> None:
    config = workflow_config(ChatRequest(), thread_id="t-1", mcp_settings=None, recursion_limit=9)

    assert "mcp_settings" not in config["configurable"]
