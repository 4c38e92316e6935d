complete -c soambench -l slots -d 'Agent slots (default: number of CPUs)' -r
complete -c soambench -l json -d 'One JSON object with the SPEC section 12 keys'
complete -c soambench -l quick -d 'Small sizes of the same measurements'
complete -c soambench -l scale -d 'Instead: 1,000,000 tasks through 1, 10, 1,000 and 10,000 busy sessions at once; then 10,000 open sessions plus one of 1,000,000 pending tasks, and how fast soamview answers then'
complete -c soambench -l attack -d 'Instead: agent memory and a normal client\'s throughput under hostile clients (700 pipelined ListApps never read; 8 connections sending maximal frames)'
complete -c soambench -l client -d 'Instead: throughput through the session library against raw requests (alternating runs), and how fast the offline journal is written and replayed'
complete -c soambench -l big -d 'Instead: one session of 10,000,000 tasks run and collected (the agent\'s peak memory), and a restart with 10,000,000 recoverable tasks pending'
complete -c soambench -s h -l help -d 'Print help'
complete -c soambench -s V -l version -d 'Print version'
