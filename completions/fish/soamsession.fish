# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_soamsession_global_optspecs
    string join \n socket= h/help V/version
end

function __fish_soamsession_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_soamsession_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_soamsession_using_subcommand
    set -l cmd (__fish_soamsession_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c soamsession -n "__fish_soamsession_needs_command" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_needs_command" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_needs_command" -s V -l version -d 'Print version'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "create" -d 'Create a session and leave it detached; prints its id'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "submit" -d 'Submit tasks and (unless --detach) collect their outputs'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "reopen" -d 'Re-attach to a session and collect its outputs'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "fetch" -d 'Collect the outputs that are ready (up to --max, waiting up to --timeout)'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "detach" -d 'Leave a session open and unheld: its workload keeps running'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "close" -d 'End a session (closed); undelivered outputs are discarded'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "abort" -d 'Abort a session: pending tasks are canceled, running ones stopped'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "update" -d 'Replace a session\'s common data (services get SessionUpdate)'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "sync" -d 'Carry out what the offline journal holds (submit --offline-ok, releases that found no agent)'
complete -c soamsession -n "__fish_soamsession_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamsession -n "__fish_soamsession_using_subcommand create" -l app -d 'The application to create a session of (as registered)' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand create" -l type -d 'Session type (default: the application\'s "" type)' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand create" -l name -d 'A name that can stand in for the id (APP:NAME)' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand create" -l tag -d 'A label, shown in views and listed by soamview session --tag (several sessions may share it)' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand create" -l common-data -d 'File whose bytes every service instance gets in SessionEnter' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand create" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand create" -l direct -d 'FetchResultsDirectly: outputs go to the holding client only, never to the store'
complete -c soamsession -n "__fish_soamsession_using_subcommand create" -l json -d 'Print the session as a JSON object (as soamview session --json has it, with "action")'
complete -c soamsession -n "__fish_soamsession_using_subcommand create" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l app -d 'Create a session of this application (closed when its tasks have ended)' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l type -d 'Session type, with --app' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l session -d 'Submit into this open session (APP:ID or APP:NAME); left open when done' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l input-file -d 'A task per line of FILE (without --input-file, --input-dir, --task or --count, a task per line of stdin)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l input-dir -d 'A task per file in DIR (in name order)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l task -d 'A task with this text (repeatable)' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l count -d 'N tasks with empty input' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l output-dir -d 'Write each output to DIR/TASK.out (failures to DIR/TASK.err) instead of stdout' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l ping-interval -d 'Seconds between liveness pings while waiting; an unanswered ping means the agent is lost' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l reconnect-timeout -d 'Seconds to keep reconnecting (and reopening the session) after losing the agent; 0 gives up at once' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l direct -d 'The session was created with --direct (FetchResultsDirectly)'
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l detach -d 'Submit, print the session, and leave without waiting for outputs'
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l offline-ok -d 'If no agent can be reached, keep the submission in the offline journal (it is submitted at the next contact: soamsession sync) instead of failing'
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l json -d 'Once the tasks are accepted, print the submission as one JSON object on stdout (app, id, session, first_task, last_task, count), before any output; use with --detach or --jsonl so that stdout stays JSON'
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l jsonl -d 'One JSON object per task: task, state, attempts, output or output_base64, error'
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l ordered -d 'Write outputs in task order rather than as they come'
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -l progress -d 'Show progress even when stdout is not a terminal: a bar if stderr is one, else a summary line a second on stderr'
complete -c soamsession -n "__fish_soamsession_using_subcommand submit" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l output-dir -d 'Write each output to DIR/TASK.out (failures to DIR/TASK.err) instead of stdout' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l ping-interval -d 'Seconds between liveness pings while waiting; an unanswered ping means the agent is lost' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l reconnect-timeout -d 'Seconds to keep reconnecting (and reopening the session) after losing the agent; 0 gives up at once' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l all -d 'Also outputs already delivered, where the session type keeps them (discardResultsOnDelivery: false)'
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l detach -d 'Deliver what is ready now and detach, leaving the session running (as submit --detach)'
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l no-wait -d 'The old spelling of --detach (before 0.2), kept for a release'
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l keep-open -d 'Wait for every task, then leave the session open instead of closing it'
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l direct -d 'The session was created with --direct (FetchResultsDirectly)'
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l jsonl -d 'One JSON object per task: task, state, attempts, output or output_base64, error'
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l ordered -d 'Write outputs in task order rather than as they come'
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -l progress -d 'Show progress even when stdout is not a terminal: a bar if stderr is one, else a summary line a second on stderr'
complete -c soamsession -n "__fish_soamsession_using_subcommand reopen" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_using_subcommand fetch" -l max -d 'Take at most N outputs (the rest stay for later)' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand fetch" -l timeout -d 'Wait up to S seconds for outputs not ready yet (default: take what is ready)' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand fetch" -l output-dir -d 'Write each output to DIR/TASK.out (failures to DIR/TASK.err) instead of stdout' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand fetch" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand fetch" -l direct -d 'The session was created with --direct (FetchResultsDirectly)'
complete -c soamsession -n "__fish_soamsession_using_subcommand fetch" -l jsonl -d 'One JSON object per task: task, state, attempts, output or output_base64, error'
complete -c soamsession -n "__fish_soamsession_using_subcommand fetch" -l ordered -d 'Write outputs in task order rather than as they come'
complete -c soamsession -n "__fish_soamsession_using_subcommand fetch" -l progress -d 'Show progress even when stdout is not a terminal: a bar if stderr is one, else a summary line a second on stderr'
complete -c soamsession -n "__fish_soamsession_using_subcommand fetch" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_using_subcommand detach" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand detach" -l json -d 'Print the session as it is afterwards as JSON, with an "action" key'
complete -c soamsession -n "__fish_soamsession_using_subcommand detach" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_using_subcommand close" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand close" -l json -d 'Print the session as it is afterwards as JSON, with an "action" key'
complete -c soamsession -n "__fish_soamsession_using_subcommand close" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_using_subcommand abort" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand abort" -l json -d 'Print the session as it is afterwards as JSON, with an "action" key'
complete -c soamsession -n "__fish_soamsession_using_subcommand abort" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_using_subcommand update" -l common-data -d 'File whose bytes replace the common data (instances serving the session get SessionUpdate)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand update" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand update" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_using_subcommand sync" -l drop -d 'Remove entry N from the journal without carrying it out' -r
complete -c soamsession -n "__fish_soamsession_using_subcommand sync" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamsession -n "__fish_soamsession_using_subcommand sync" -l list -d 'Show the journal\'s entries instead of carrying them out'
complete -c soamsession -n "__fish_soamsession_using_subcommand sync" -l json -d 'With --list: one JSON array, an object an entry (seq, at, at_ms, action, session or app and type, tasks, state, refused, description)'
complete -c soamsession -n "__fish_soamsession_using_subcommand sync" -s h -l help -d 'Print help'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "create" -d 'Create a session and leave it detached; prints its id'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "submit" -d 'Submit tasks and (unless --detach) collect their outputs'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "reopen" -d 'Re-attach to a session and collect its outputs'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "fetch" -d 'Collect the outputs that are ready (up to --max, waiting up to --timeout)'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "detach" -d 'Leave a session open and unheld: its workload keeps running'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "close" -d 'End a session (closed); undelivered outputs are discarded'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "abort" -d 'Abort a session: pending tasks are canceled, running ones stopped'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "update" -d 'Replace a session\'s common data (services get SessionUpdate)'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "sync" -d 'Carry out what the offline journal holds (submit --offline-ok, releases that found no agent)'
complete -c soamsession -n "__fish_soamsession_using_subcommand help; and not __fish_seen_subcommand_from create submit reopen fetch detach close abort update sync help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
