# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_soamdeploy_global_optspecs
    string join \n json o/columns= no-header sort= socket= u/user= x/password= h/help V/version
end

function __fish_soamdeploy_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_soamdeploy_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_soamdeploy_using_subcommand
    set -l cmd (__fish_soamdeploy_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -l json -d 'Print JSON: the package\'s row (add), an array of rows (view), {"action": "removed", ...} (remove)'
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -l no-header -d 'Leave out the table\'s header line'
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -s h -l help -d 'Print help'
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -s V -l version -d 'Print version'
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -f -a "add" -d 'Deploy an archive (tar.gz or zip) as the current version of package NAME; new instances of services naming it start from it'
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -f -a "view" -d 'Deployed packages: each one\'s current version, its size and when it was added'
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -f -a "remove" -d 'Remove a package and its versions; instances running from it finish there'
complete -c soamdeploy -n "__fish_soamdeploy_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -s p -l package -d 'The archive: tar.gz (or .tgz) or zip' -r -F
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -s c -l consumer -d 'Symphony\'s consumer: accepted for Symphony\'s scripts and not used (a package is the agent\'s)' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -l json -d 'Print JSON: the package\'s row (add), an array of rows (view), {"action": "removed", ...} (remove)'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -l no-header -d 'Leave out the table\'s header line'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand add" -s h -l help -d 'Print help'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand view" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand view" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand view" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand view" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand view" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand view" -l json -d 'Print JSON: the package\'s row (add), an array of rows (view), {"action": "removed", ...} (remove)'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand view" -l no-header -d 'Leave out the table\'s header line'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand view" -s h -l help -d 'Print help'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand remove" -s o -l columns -d 'Table columns to show, comma-separated (`-o all` for every one); --json always has every field' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand remove" -l sort -d 'Sort by these columns (any name -o takes), comma-separated; `-COL` sorts that one from the largest; empty values last. Tables and --json alike. Without it, the agent\'s order (by id)' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand remove" -l socket -d 'Agent socket (default: $XDG_RUNTIME_DIR/soam/soamd.sock, or under $SOAM_HOME)' -r -F
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand remove" -s u -l user -d 'Symphony\'s user name: accepted for Symphony\'s scripts and not used (the agent knows you by your uid)' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand remove" -s x -l password -d 'Symphony\'s password: accepted for Symphony\'s scripts and not used' -r
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand remove" -l json -d 'Print JSON: the package\'s row (add), an array of rows (view), {"action": "removed", ...} (remove)'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand remove" -l no-header -d 'Leave out the table\'s header line'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand remove" -s h -l help -d 'Print help'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand help; and not __fish_seen_subcommand_from add view remove help" -f -a "add" -d 'Deploy an archive (tar.gz or zip) as the current version of package NAME; new instances of services naming it start from it'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand help; and not __fish_seen_subcommand_from add view remove help" -f -a "view" -d 'Deployed packages: each one\'s current version, its size and when it was added'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand help; and not __fish_seen_subcommand_from add view remove help" -f -a "remove" -d 'Remove a package and its versions; instances running from it finish there'
complete -c soamdeploy -n "__fish_soamdeploy_using_subcommand help; and not __fish_seen_subcommand_from add view remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
