package dgc

deny contains msg if {
    input.action.type == "tool_call"
    startswith(input.action.tool, "shell.")
    contains(input.action.arguments.command, "prod")
    msg := sprintf("agent %s may not touch prod from a shell", [input.principal.agent])
}

needs_approval contains "refunds over 100 need review" if {
    input.action.tool == "shop.refund"
    input.action.arguments.amount > 100
}

redact contains {"path": "/password", "reason": "passwords never reach tools"} if {
    input.action.arguments.password
}
