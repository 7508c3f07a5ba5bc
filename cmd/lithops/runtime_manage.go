package main

import "github.com/spf13/cobra"

// addRuntimeManagement adds build, deploy, list, update and delete.
func addRuntimeManagement(cmd *cobra.Command, g *globalFlags) {}
