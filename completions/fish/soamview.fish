# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_soamview_global_optspecs
    string join \n json o/columns= no-header sort= watch= socket= u/user= x/password= h/help V/version
end

function __fish_soamview_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_soamview_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_soamview_using_subcommand
    set -l cmd (__fish_soamview_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c soamview -n "__fish_soamview_needs_command" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamview -n "__fish_soamview_needs_command" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamview -n "__fish_soamview_needs_command" -l watch -d 'Show it again every SECONDS (default 1) until interrupted: on a terminal a redraw under a line with the time; into a pipe or file blocks separated by a blank line, each after its time, and with --json one JSON document a line (JSON Lines)' -r
complete -c soamview -n "__fish_soamview_needs_command" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamview -n "__fish_soamview_needs_command" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamview -n "__fish_soamview_needs_command" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamview -n "__fish_soamview_needs_command" -l json -d 'Print JSON: an array of objects with every field (times as RFC 3339 and *_ms)'
complete -c soamview -n "__fish_soamview_needs_command" -l no-header -d 'Leave out the table\'s header line'
complete -c soamview -n "__fish_soamview_needs_command" -s h -l help -d 'Print help'
complete -c soamview -n "__fish_soamview_needs_command" -s V -l version -d 'Print version'
complete -c soamview -n "__fish_soamview_needs_command" -f -a "app" -d 'Registered applications'
complete -c soamview -n "__fish_soamview_needs_command" -f -a "session" -d 'Sessions (open ones; -a adds ended ones from history)'
complete -c soamview -n "__fish_soamview_needs_command" -f -a "task" -d 'Tasks of one session'
complete -c soamview -n "__fish_soamview_needs_command" -f -a "cluster" -d 'Slurm allocations: pending (with Slurm\'s reason) or running, their nodes and slots'
complete -c soamview -n "__fish_soamview_needs_command" -f -a "top" -d 'A full-screen live view: sessions with progress and rates, applications\' instances, Slurm allocations and the agent\'s own figures; keys to open a session\'s tasks, suspend, resume and kill (q quits, ? lists the keys)'
complete -c soamview -n "__fish_soamview_needs_command" -f -a "events" -d 'Changes as they happen: sessions and tasks changing state, instances starting and ending, Slurm allocations; a line each, or JSON Lines with --json. Without --follow, the open sessions\' states now'
complete -c soamview -n "__fish_soamview_needs_command" -f -a "history" -d 'Ended sessions; with APP:ID, that session\'s kept task history'
complete -c soamview -n "__fish_soamview_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamview -n "__fish_soamview_using_subcommand app" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamview -n "__fish_soamview_using_subcommand app" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamview -n "__fish_soamview_using_subcommand app" -l watch -d 'Show it again every SECONDS (default 1) until interrupted: on a terminal a redraw under a line with the time; into a pipe or file blocks separated by a blank line, each after its time, and with --json one JSON document a line (JSON Lines)' -r
complete -c soamview -n "__fish_soamview_using_subcommand app" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamview -n "__fish_soamview_using_subcommand app" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamview -n "__fish_soamview_using_subcommand app" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamview -n "__fish_soamview_using_subcommand app" -s l -l long -d 'Long listing: limits, source file, registration time'
complete -c soamview -n "__fish_soamview_using_subcommand app" -s p -l profile -d 'Print the registered profile text'
complete -c soamview -n "__fish_soamview_using_subcommand app" -l json -d 'Print JSON: an array of objects with every field (times as RFC 3339 and *_ms)'
complete -c soamview -n "__fish_soamview_using_subcommand app" -l no-header -d 'Leave out the table\'s header line'
complete -c soamview -n "__fish_soamview_using_subcommand app" -s h -l help -d 'Print help'
complete -c soamview -n "__fish_soamview_using_subcommand session" -l state -d 'Only sessions in this state (any case)' -r -f -a "open\t''
suspended\t''
reconnecting\t''
closed\t''
aborted\t''"
complete -c soamview -n "__fish_soamview_using_subcommand session" -l tag -d 'Only sessions with this tag' -r
complete -c soamview -n "__fish_soamview_using_subcommand session" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamview -n "__fish_soamview_using_subcommand session" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamview -n "__fish_soamview_using_subcommand session" -l watch -d 'Show it again every SECONDS (default 1) until interrupted: on a terminal a redraw under a line with the time; into a pipe or file blocks separated by a blank line, each after its time, and with --json one JSON document a line (JSON Lines)' -r
complete -c soamview -n "__fish_soamview_using_subcommand session" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamview -n "__fish_soamview_using_subcommand session" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamview -n "__fish_soamview_using_subcommand session" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamview -n "__fish_soamview_using_subcommand session" -s a -l all -d 'Include ended sessions'
complete -c soamview -n "__fish_soamview_using_subcommand session" -l orphaned -d 'Only detached, idle sessions with output nobody collected'
complete -c soamview -n "__fish_soamview_using_subcommand session" -l json -d 'Print JSON: an array of objects with every field (times as RFC 3339 and *_ms)'
complete -c soamview -n "__fish_soamview_using_subcommand session" -l no-header -d 'Leave out the table\'s header line'
complete -c soamview -n "__fish_soamview_using_subcommand session" -s h -l help -d 'Print help'
complete -c soamview -n "__fish_soamview_using_subcommand task" -l state -d 'Only tasks in this state (any case; the count columns\' headers too: pend, run, err, canc)' -r -f -a "pending\t''
running\t''
done\t''
error\t''
canceled\t''"
complete -c soamview -n "__fish_soamview_using_subcommand task" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamview -n "__fish_soamview_using_subcommand task" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamview -n "__fish_soamview_using_subcommand task" -l watch -d 'Show it again every SECONDS (default 1) until interrupted: on a terminal a redraw under a line with the time; into a pipe or file blocks separated by a blank line, each after its time, and with --json one JSON document a line (JSON Lines)' -r
complete -c soamview -n "__fish_soamview_using_subcommand task" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamview -n "__fish_soamview_using_subcommand task" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamview -n "__fish_soamview_using_subcommand task" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamview -n "__fish_soamview_using_subcommand task" -l json -d 'Print JSON: an array of objects with every field (times as RFC 3339 and *_ms)'
complete -c soamview -n "__fish_soamview_using_subcommand task" -l no-header -d 'Leave out the table\'s header line'
complete -c soamview -n "__fish_soamview_using_subcommand task" -s h -l help -d 'Print help'
complete -c soamview -n "__fish_soamview_using_subcommand cluster" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamview -n "__fish_soamview_using_subcommand cluster" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamview -n "__fish_soamview_using_subcommand cluster" -l watch -d 'Show it again every SECONDS (default 1) until interrupted: on a terminal a redraw under a line with the time; into a pipe or file blocks separated by a blank line, each after its time, and with --json one JSON document a line (JSON Lines)' -r
complete -c soamview -n "__fish_soamview_using_subcommand cluster" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamview -n "__fish_soamview_using_subcommand cluster" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamview -n "__fish_soamview_using_subcommand cluster" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamview -n "__fish_soamview_using_subcommand cluster" -l json -d 'Print JSON: an array of objects with every field (times as RFC 3339 and *_ms)'
complete -c soamview -n "__fish_soamview_using_subcommand cluster" -l no-header -d 'Leave out the table\'s header line'
complete -c soamview -n "__fish_soamview_using_subcommand cluster" -s h -l help -d 'Print help'
complete -c soamview -n "__fish_soamview_using_subcommand top" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamview -n "__fish_soamview_using_subcommand top" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamview -n "__fish_soamview_using_subcommand top" -l watch -d 'Show it again every SECONDS (default 1) until interrupted: on a terminal a redraw under a line with the time; into a pipe or file blocks separated by a blank line, each after its time, and with --json one JSON document a line (JSON Lines)' -r
complete -c soamview -n "__fish_soamview_using_subcommand top" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamview -n "__fish_soamview_using_subcommand top" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamview -n "__fish_soamview_using_subcommand top" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamview -n "__fish_soamview_using_subcommand top" -l json -d 'Print JSON: an array of objects with every field (times as RFC 3339 and *_ms)'
complete -c soamview -n "__fish_soamview_using_subcommand top" -l no-header -d 'Leave out the table\'s header line'
complete -c soamview -n "__fish_soamview_using_subcommand top" -s h -l help -d 'Print help'
complete -c soamview -n "__fish_soamview_using_subcommand events" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamview -n "__fish_soamview_using_subcommand events" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamview -n "__fish_soamview_using_subcommand events" -l watch -d 'Show it again every SECONDS (default 1) until interrupted: on a terminal a redraw under a line with the time; into a pipe or file blocks separated by a blank line, each after its time, and with --json one JSON document a line (JSON Lines)' -r
complete -c soamview -n "__fish_soamview_using_subcommand events" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamview -n "__fish_soamview_using_subcommand events" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamview -n "__fish_soamview_using_subcommand events" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamview -n "__fish_soamview_using_subcommand events" -s f -l follow -d 'The open sessions\' states now, then every change as it happens, until interrupted (a reader too slow for them is told how many it missed)'
complete -c soamview -n "__fish_soamview_using_subcommand events" -l json -d 'Print JSON: an array of objects with every field (times as RFC 3339 and *_ms)'
complete -c soamview -n "__fish_soamview_using_subcommand events" -l no-header -d 'Leave out the table\'s header line'
complete -c soamview -n "__fish_soamview_using_subcommand events" -s h -l help -d 'Print help'
complete -c soamview -n "__fish_soamview_using_subcommand history" -l tag -d 'Only sessions with this tag' -r
complete -c soamview -n "__fish_soamview_using_subcommand history" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamview -n "__fish_soamview_using_subcommand history" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamview -n "__fish_soamview_using_subcommand history" -l watch -d 'Show it again every SECONDS (default 1) until interrupted: on a terminal a redraw under a line with the time; into a pipe or file blocks separated by a blank line, each after its time, and with --json one JSON document a line (JSON Lines)' -r
complete -c soamview -n "__fish_soamview_using_subcommand history" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamview -n "__fish_soamview_using_subcommand history" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamview -n "__fish_soamview_using_subcommand history" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamview -n "__fish_soamview_using_subcommand history" -l json -d 'Print JSON: an array of objects with every field (times as RFC 3339 and *_ms)'
complete -c soamview -n "__fish_soamview_using_subcommand history" -l no-header -d 'Leave out the table\'s header line'
complete -c soamview -n "__fish_soamview_using_subcommand history" -s h -l help -d 'Print help'
complete -c soamview -n "__fish_soamview_using_subcommand help; and not __fish_seen_subcommand_from app session task cluster top events history help" -f -a "app" -d 'Registered applications'
complete -c soamview -n "__fish_soamview_using_subcommand help; and not __fish_seen_subcommand_from app session task cluster top events history help" -f -a "session" -d 'Sessions (open ones; -a adds ended ones from history)'
complete -c soamview -n "__fish_soamview_using_subcommand help; and not __fish_seen_subcommand_from app session task cluster top events history help" -f -a "task" -d 'Tasks of one session'
complete -c soamview -n "__fish_soamview_using_subcommand help; and not __fish_seen_subcommand_from app session task cluster top events history help" -f -a "cluster" -d 'Slurm allocations: pending (with Slurm\'s reason) or running, their nodes and slots'
complete -c soamview -n "__fish_soamview_using_subcommand help; and not __fish_seen_subcommand_from app session task cluster top events history help" -f -a "top" -d 'A full-screen live view: sessions with progress and rates, applications\' instances, Slurm allocations and the agent\'s own figures; keys to open a session\'s tasks, suspend, resume and kill (q quits, ? lists the keys)'
complete -c soamview -n "__fish_soamview_using_subcommand help; and not __fish_seen_subcommand_from app session task cluster top events history help" -f -a "events" -d 'Changes as they happen: sessions and tasks changing state, instances starting and ending, Slurm allocations; a line each, or JSON Lines with --json. Without --follow, the open sessions\' states now'
complete -c soamview -n "__fish_soamview_using_subcommand help; and not __fish_seen_subcommand_from app session task cluster top events history help" -f -a "history" -d 'Ended sessions; with APP:ID, that session\'s kept task history'
complete -c soamview -n "__fish_soamview_using_subcommand help; and not __fish_seen_subcommand_from app session task cluster top events history help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
