package observe

import "flag"

func flagSet() *flag.FlagSet { return flag.NewFlagSet("observe", flag.ContinueOnError) }
