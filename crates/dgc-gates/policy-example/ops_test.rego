package dgc_test

import data.dgc

test_prod_shell_denied if {
    count(dgc.deny) == 1 with input as {"principal": {"agent": "ag_1"}, "action": {"type": "tool_call", "tool": "shell.exec", "arguments": {"command": "ssh prod-db uptime"}}}
}

test_small_refund_passes if {
    count(dgc.needs_approval) == 0 with input as {"action": {"type": "tool_call", "tool": "shop.refund", "arguments": {"amount": 20}}}
}
