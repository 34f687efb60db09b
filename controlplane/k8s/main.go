// Command k8s-cp is a multi-call binary (the hyperkube pattern): one link instead of five.
// Each process runs exactly one component, chosen by argv[0] or the first argument, so the
// components' process-global signal handlers and registries never meet.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as upstream's mains do

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream's mains do
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream's mains do
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream's mains do
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	name, args := filepath.Base(os.Args[0]), os.Args[1:]
	if name == "k8s-cp" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: k8s-cp {kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|etcd} [flags]")
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	var command *cobra.Command
	switch name {
	case "kube-apiserver":
		command = apiserver.NewAPIServerCommand()
	case "kube-controller-manager":
		command = controllermanager.NewControllerManagerCommand()
	case "kube-scheduler":
		command = scheduler.NewSchedulerCommand()
	case "kubelet": // only `sandbox up --real-nodes` runs it
		command = kubelet.NewKubeletCommand(context.Background())
	case "etcd":
		etcdmain.Main(append([]string{"etcd"}, args...))
		return
	default:
		fmt.Fprintln(os.Stderr, "k8s-cp: unknown component", name)
		os.Exit(2)
	}
	command.SetArgs(args)
	os.Exit(cli.Run(command))
}
