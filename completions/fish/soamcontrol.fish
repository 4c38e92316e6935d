# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_soamcontrol_global_optspecs
    string join \n json socket= u/user= x/password= h/help V/version
end

function __fish_soamcontrol_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_soamcontrol_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_soamcontrol_using_subcommand
    set -l cmd (__fish_soamcontrol_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -s V -l version -d 'Print version'
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -f -a "app" -d 'Enable or disable an application (a disabled one accepts no new sessions and runs nothing)'
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -f -a "session" -d 'Suspend, resume or kill (abort) a session'
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -f -a "task" -d 'Kill or requeue a task'
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -f -a "agent" -d 'Agent status, log or shutdown'
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -f -a "cluster" -d 'Slurm allocations (see soamview cluster)'
complete -c soamcontrol -n "__fish_soamcontrol_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and not __fish_seen_subcommand_from enable disable help" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and not __fish_seen_subcommand_from enable disable help" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and not __fish_seen_subcommand_from enable disable help" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and not __fish_seen_subcommand_from enable disable help" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and not __fish_seen_subcommand_from enable disable help" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and not __fish_seen_subcommand_from enable disable help" -f -a "enable" -d 'Let new sessions of the application be created again'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and not __fish_seen_subcommand_from enable disable help" -f -a "disable" -d 'Refuse new sessions of the application; open ones go on'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and not __fish_seen_subcommand_from enable disable help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from enable" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from enable" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from enable" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from enable" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from disable" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from disable" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from disable" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from disable" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Let new sessions of the application be created again'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Refuse new sessions of the application; open ones go on'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand app; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and not __fish_seen_subcommand_from suspend resume kill help" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and not __fish_seen_subcommand_from suspend resume kill help" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and not __fish_seen_subcommand_from suspend resume kill help" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and not __fish_seen_subcommand_from suspend resume kill help" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and not __fish_seen_subcommand_from suspend resume kill help" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and not __fish_seen_subcommand_from suspend resume kill help" -f -a "suspend" -d 'Stop dispatching; running tasks get suspendGracePeriod, then are requeued'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and not __fish_seen_subcommand_from suspend resume kill help" -f -a "resume" -d 'Dispatch again'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and not __fish_seen_subcommand_from suspend resume kill help" -f -a "kill" -d 'Abort the session: pending tasks are canceled, running ones get taskCleanupPeriod'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and not __fish_seen_subcommand_from suspend resume kill help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from suspend" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from suspend" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from suspend" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from suspend" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from suspend" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from resume" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from resume" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from resume" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from resume" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from resume" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from kill" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from kill" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from kill" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from kill" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from kill" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "suspend" -d 'Stop dispatching; running tasks get suspendGracePeriod, then are requeued'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "resume" -d 'Dispatch again'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "kill" -d 'Abort the session: pending tasks are canceled, running ones get taskCleanupPeriod'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and not __fish_seen_subcommand_from kill requeue help" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and not __fish_seen_subcommand_from kill requeue help" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and not __fish_seen_subcommand_from kill requeue help" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and not __fish_seen_subcommand_from kill requeue help" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and not __fish_seen_subcommand_from kill requeue help" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and not __fish_seen_subcommand_from kill requeue help" -f -a "kill" -d 'Cancel a pending or running task (running: after taskCleanupPeriod)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and not __fish_seen_subcommand_from kill requeue help" -f -a "requeue" -d 'Run a task again: a running one is stopped and requeued, an ended one re-run'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and not __fish_seen_subcommand_from kill requeue help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from kill" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from kill" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from kill" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from kill" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from kill" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from requeue" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from requeue" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from requeue" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from requeue" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from requeue" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from help" -f -a "kill" -d 'Cancel a pending or running task (running: after taskCleanupPeriod)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from help" -f -a "requeue" -d 'Run a task again: a running one is stopped and requeued, an ended one re-run'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand task; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and not __fish_seen_subcommand_from status log shutdown help" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and not __fish_seen_subcommand_from status log shutdown help" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and not __fish_seen_subcommand_from status log shutdown help" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and not __fish_seen_subcommand_from status log shutdown help" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and not __fish_seen_subcommand_from status log shutdown help" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and not __fish_seen_subcommand_from status log shutdown help" -f -a "status" -d 'Version, pid, uptime, slots, store path of the running agent; never starts one (none running: exit 3)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and not __fish_seen_subcommand_from status log shutdown help" -f -a "log" -d 'The agent\'s log (service stderr included, as "service APP/INSTANCE: ..."), read from its data folder: works when the agent is down'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and not __fish_seen_subcommand_from status log shutdown help" -f -a "shutdown" -d 'Stop the running agent cleanly; waits until it has stopped. Never starts one (none running: exit 3)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and not __fish_seen_subcommand_from status log shutdown help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from status" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from status" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from status" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from status" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from log" -s n -l lines -d 'Lines to print from the end' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from log" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from log" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from log" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from log" -s f -l follow -d 'Go on printing what is written, across rotations, until interrupted'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from log" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from log" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from shutdown" -l timeout -d 'Seconds to wait for the agent to stop' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from shutdown" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from shutdown" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from shutdown" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from shutdown" -l no-wait -d 'Return once the agent has accepted the request, without waiting for it to stop'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from shutdown" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from shutdown" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "status" -d 'Version, pid, uptime, slots, store path of the running agent; never starts one (none running: exit 3)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "log" -d 'The agent\'s log (service stderr included, as "service APP/INSTANCE: ..."), read from its data folder: works when the agent is down'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "shutdown" -d 'Stop the running agent cleanly; waits until it has stopped. Never starts one (none running: exit 3)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and not __fish_seen_subcommand_from release help" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and not __fish_seen_subcommand_from release help" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and not __fish_seen_subcommand_from release help" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and not __fish_seen_subcommand_from release help" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and not __fish_seen_subcommand_from release help" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and not __fish_seen_subcommand_from release help" -f -a "release" -d 'Give an allocation back: its workers stop, running tasks are requeued'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and not __fish_seen_subcommand_from release help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and __fish_seen_subcommand_from release" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and __fish_seen_subcommand_from release" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and __fish_seen_subcommand_from release" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and __fish_seen_subcommand_from release" -l json -d 'Print the changed object (or the status) as JSON, with an "action" key for acts'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and __fish_seen_subcommand_from release" -s h -l help -d 'Print help'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and __fish_seen_subcommand_from help" -f -a "release" -d 'Give an allocation back: its workers stop, running tasks are requeued'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand cluster; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and not __fish_seen_subcommand_from app session task agent cluster help" -f -a "app" -d 'Enable or disable an application (a disabled one accepts no new sessions and runs nothing)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and not __fish_seen_subcommand_from app session task agent cluster help" -f -a "session" -d 'Suspend, resume or kill (abort) a session'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and not __fish_seen_subcommand_from app session task agent cluster help" -f -a "task" -d 'Kill or requeue a task'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and not __fish_seen_subcommand_from app session task agent cluster help" -f -a "agent" -d 'Agent status, log or shutdown'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and not __fish_seen_subcommand_from app session task agent cluster help" -f -a "cluster" -d 'Slurm allocations (see soamview cluster)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and not __fish_seen_subcommand_from app session task agent cluster help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from app" -f -a "enable" -d 'Let new sessions of the application be created again'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from app" -f -a "disable" -d 'Refuse new sessions of the application; open ones go on'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "suspend" -d 'Stop dispatching; running tasks get suspendGracePeriod, then are requeued'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "resume" -d 'Dispatch again'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "kill" -d 'Abort the session: pending tasks are canceled, running ones get taskCleanupPeriod'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from task" -f -a "kill" -d 'Cancel a pending or running task (running: after taskCleanupPeriod)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from task" -f -a "requeue" -d 'Run a task again: a running one is stopped and requeued, an ended one re-run'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "status" -d 'Version, pid, uptime, slots, store path of the running agent; never starts one (none running: exit 3)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "log" -d 'The agent\'s log (service stderr included, as "service APP/INSTANCE: ..."), read from its data folder: works when the agent is down'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "shutdown" -d 'Stop the running agent cleanly; waits until it has stopped. Never starts one (none running: exit 3)'
complete -c soamcontrol -n "__fish_soamcontrol_using_subcommand help; and __fish_seen_subcommand_from cluster" -f -a "release" -d 'Give an allocation back: its workers stop, running tasks are requeued'
