package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/sundial-mdm/sundial/api"
	"github.com/sundial-mdm/sundial/internal/webhook"
)

// webhookInterval is how often the leader's worker looks for due
// deliveries; retries are spaced by the worker's backoff, not by this.
const webhookInterval = 2 * time.Second

// newWebhookWorker builds the outbox worker over the store and registers
// its counters on /metrics.
func (a *app) newWebhookWorker(opener webhook.Opener) *webhook.Worker {
	w := &webhook.Worker{Outbox: a.store, Endpoints: a.store, Opener: opener, Clock: a.clock}
	for _, c := range []struct {
		result string
		get    func() int64
	}{
		{"delivered", func() int64 { return w.Stats().Delivered }},
		{"failed", func() int64 { return w.Stats().Failed }},
		{"dropped", func() int64 { return w.Stats().Dropped }},
	} {
		a.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "sundial_webhook_deliveries_total",
			Help:        "Webhook delivery attempts on this replica by result (dropped: pruned from the outbox undelivered, by age or per-endpoint cap).",
			ConstLabels: prometheus.Labels{"result": c.result},
		}, func() float64 { return float64(c.get()) }))
	}
	return w
}

// expiringInterval is how often the leader looks for exceptions expiring
// within webhook.ExpiringWithin; an expiry is announced at most this late.
const expiringInterval = 5 * time.Minute

// runWebhooks drains the outbox and announces expiring exceptions until
// ctx ends; it runs on the scheduler leader only, so one replica delivers
// at a time.
func (a *app) runWebhooks(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.runExpiring(ctx, expiringInterval)
	}()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		a.runReadinessWatch(ctx, readinessInterval)
	}()
	a.hooks.Run(ctx, webhookInterval, func(err error) {
		a.log.Warn("webhook delivery pass failed", "err", err)
	})
	<-done
	<-watched
}

// runExpiring queues exception.expiring for the exceptions expiring within
// webhook.ExpiringWithin, at once and then every interval until ctx ends.
// The store's ledger keeps each expiry to one event across checks,
// restarts and leader changes.
func (a *app) runExpiring(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := webhook.CheckExpiring(ctx, a.store, a.clock.Now(), webhook.ExpiringWithin)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("expiring exception check failed", "err", err)
		}
		if n > 0 {
			a.log.Info("exceptions expiring soon announced", "exceptions", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func newWebhooksCmd(getenv func(string) string, cf *clientFlags) *cobra.Command {
	hooks := &cobra.Command{Use: "webhooks", Short: "Add, list, test and remove webhook endpoints (signed JSON events)"}
	var events []string
	add := &cobra.Command{
		Use: "add ID URL", Short: "Add an endpoint (its signing secret is printed once)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			for _, e := range events {
				if !webhook.Valid(e) {
					return usageError{fmt.Errorf("--event %q: want one of %s", e, strings.Join(webhook.Types, ", "))}
				}
			}
			h, err := c.AddWebhook(cmd.Context(), args[0], args[1], events)
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), h)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "id:     %s\nurl:    %s\nevents: %s\nsecret: %s\n(store the secret now: Sundial shows it only once)\n",
				h.ID, h.URL, eventList(h.Events), h.Secret)
			return nil
		},
	}
	add.Flags().StringSliceVar(&events, "event", nil, "event type to send (repeatable; default every type): "+strings.Join(webhook.Types, ", "))
	setAPIField(add, "event", "events")
	list := &cobra.Command{
		Use: "list", Short: "List endpoints (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			hs, err := c.Webhooks(cmd.Context())
			if err != nil {
				return err
			}
			if cf.output == "json" {
				if hs == nil {
					hs = []api.Webhook{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"webhooks": hs})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tURL\tEVENTS\tCREATED")
			for _, h := range hs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.ID, h.URL, eventList(h.Events), h.Created.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	test := &cobra.Command{
		Use: "test ID", Short: "Queue a signed webhook.test event for an endpoint", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			id, err := c.TestWebhook(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]string{"webhook": args[0], "event_id": id})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "queued test event %s for %s\n", id, args[0])
			return nil
		},
	}
	remove := &cobra.Command{
		Use: "remove ID", Short: "Remove an endpoint and drop its undelivered events", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(cmd, getenv)
			if err != nil {
				return err
			}
			if err := c.RemoveWebhook(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
	hooks.AddCommand(add, list, test, remove)
	return hooks
}

func eventList(es []string) string {
	if len(es) == 0 {
		return "all"
	}
	return strings.Join(es, ",")
}
